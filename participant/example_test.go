package participant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wire"
)

// seats is a service's domain logic: a number of seats that transactions
// hold, confirm or release. It is deterministic, as filestore requires.
type seats struct {
	free  int
	holds map[concord.TxID]int
}

func (s *seats) Prepare(id concord.TxID, payload json.RawMessage) participant.PrepareResult {
	var p struct{ Seats int }
	if err := json.Unmarshal(payload, &p); err != nil || p.Seats <= 0 {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "bad payload"}
	}
	if p.Seats > s.free {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: fmt.Sprintf("only %d seats left", s.free)}
	}
	s.free -= p.Seats
	s.holds[id] = p.Seats
	return participant.PrepareResult{Vote: concord.VoteYes}
}

func (s *seats) Commit(id concord.TxID) { delete(s.holds, id) }
func (s *seats) Abort(id concord.TxID)  { s.free += s.holds[id]; delete(s.holds, id) }

func (s *seats) Snapshot() ([]byte, error) {
	return json.Marshal(struct {
		Free  int
		Holds map[concord.TxID]int
	}{s.free, s.holds})
}

func (s *seats) Restore(b []byte) error {
	var v struct {
		Free  int
		Holds map[concord.TxID]int
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	s.free, s.holds = v.Free, v.Holds
	return nil
}

// A service supplies its domain logic; the file store makes it durable and
// the Server speaks the protocol.
func Example() {
	dir, _ := os.MkdirTemp("", "seats")
	defer os.RemoveAll(dir)

	store, err := filestore.Open(filestore.Options{Dir: dir, Machine: &seats{free: 3, holds: map[concord.TxID]int{}}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	srv, err := participant.NewServer(participant.Options{Resource: store, Coordinator: "http://127.0.0.1:7070"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Close()
	if err := srv.Start(context.Background()); err != nil { // recovers prepared transactions first
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv.Handler()) // a service serves it on its own listener
	defer hs.Close()

	// What a coordinator sends:
	pc := &wire.ParticipantClient{BaseURL: hs.URL}
	ctx := context.Background()
	for _, id := range []concord.TxID{"trip-1", "trip-2"} {
		votes, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{
			{ID: id, Payload: json.RawMessage(`{"seats": 2}`)},
		}})
		if err != nil {
			fmt.Println(err)
			return
		}
		v := votes.Votes[0]
		if v.Reason != "" {
			fmt.Println(v.ID, v.Vote, "-", v.Reason)
			continue
		}
		fmt.Println(v.ID, v.Vote)
	}
	acks, _ := pc.Commit(ctx, []concord.TxID{"trip-1"})
	fmt.Println("committed:", acks.Acknowledged)
	// Output:
	// trip-1 yes
	// trip-2 no - only 1 seats left
	// committed: [trip-1]
}
