package sim

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
)

// driveMachine performs rd's resource calls on r one after another, feeding
// each result back to m, until m asks for nothing more, and returns every
// reply m produced.
func driveMachine(t *testing.T, m *tpc.Participant, r resource, rd tpc.ParticipantReady) []tpc.ParticipantReply {
	t.Helper()
	ctx := context.Background()
	var replies []tpc.ParticipantReply
	for {
		replies = append(replies, rd.Replies...)
		if len(rd.Actions) == 0 {
			return replies
		}
		a := rd.Actions[0]
		rest := rd.Actions[1:]
		res := tpc.ParticipantResult{Kind: a.Kind, ID: a.ID}
		var err error
		switch a.Kind {
		case tpc.ActPrepare:
			var pr participant.PrepareResult
			pr, err = r.Prepare(ctx, a.ID, a.Payload, participant.PrepareInfo{Deadline: a.Deadline})
			res.Vote, res.Reason = pr.Vote, pr.Reason
		case tpc.ActCommitOnePhase:
			res.Outcome, res.Reason, err = r.CommitOnePhase(ctx, a.ID, a.Payload, participant.PrepareInfo{Deadline: a.Deadline})
		case tpc.ActCommit:
			err = r.Commit(ctx, a.ID)
		case tpc.ActAbort:
			err = r.Abort(ctx, a.ID)
		default:
			t.Fatalf("unexpected action %s", a.Kind)
		}
		switch {
		case errors.Is(err, participant.ErrUnknownTx):
			res.Err = tpc.PErrUnknownTx
		case errors.Is(err, participant.ErrAlreadyDecided):
			res.Err = tpc.PErrAlreadyDecided
		case err != nil:
			res.Err, res.ErrText = tpc.PErrFailed, err.Error()
		}
		next := m.Done(res, epoch)
		rd = tpc.ParticipantReady{Actions: append(rest, next.Actions...), Replies: next.Replies}
	}
}

// TestLateOnePhaseDuplicateAfterRefusal: a participant whose resource has
// no one-phase commit refuses a one-phase PREPARE for want of stock; the
// coordinator reports "aborted" to the client, final. The participant
// crashes (a no vote is not forced: it "leaves nothing behind"), stock
// frees up, and a late duplicate of that PREPARE arrives: it must not
// commit. The simulator found it committing (TestSimulation seed 427588 at
// the time: "client told aborted, but the transaction committed") when the
// participant machine served such a PREPARE by prepare then commit,
// deciding alone; it now answers with a plain vote and lets the coordinator
// decide, which has long settled this one as aborted.
func TestLateOnePhaseDuplicateAfterRefusal(t *testing.T) {
	stores := []struct {
		name string
		open func(disk *memfs.FS) (resource, error)
	}{
		{"sim store", func(disk *memfs.FS) (resource, error) { return openSimStore(disk, storeDir, testStock()) }},
		{"filestore", func(disk *memfs.FS) (resource, error) {
			p := &partNode{s: newSim(Options{Seed: 1}), name: "flights", stock: testStock(), disk: disk, armed: new(atomic.Bool), fired: new(atomic.Bool)}
			return openFileResource(p)
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			ctx := context.Background()
			disk := memfs.New()
			r, err := st.open(disk)
			if err != nil {
				t.Fatal(err)
			}
			// Another transaction holds all of A.
			if res, err := r.Prepare(ctx, "tx-hold", travel.Request{SKU: "A", Quantity: 5}.Payload(), participant.PrepareInfo{}); err != nil || res.Vote != concord.VoteYes {
				t.Fatalf("prepare tx-hold: %v %v", res, err)
			}
			cfg := tpc.ParticipantConfig{OnePhase: false} // a resource without one-phase commit
			late := travel.Request{SKU: "A", Quantity: 1}.Payload()
			m := tpc.NewParticipant(cfg)
			replies := driveMachine(t, m, r, m.Prepare(1, "tx-late", late, true, coordinatorName, epoch))
			if len(replies) != 1 || replies[0].Vote != concord.VoteNo {
				t.Fatalf("one-phase prepare with A sold out answered %+v, want a no vote", replies)
			}
			// The coordinator settles tx-late as aborted and tells the client.
			disk.Crash()
			r.close()
			if r, err = st.open(disk); err != nil {
				t.Fatal(err)
			}
			defer r.close()
			if err := r.Abort(ctx, "tx-hold"); err != nil { // A is free again
				t.Fatal(err)
			}
			m = tpc.NewParticipant(cfg)
			replies = driveMachine(t, m, r, m.Prepare(1, "tx-late", late, true, coordinatorName, epoch))
			if r.state("tx-late") == travel.StateCommitted {
				t.Fatalf("a late duplicate of a refused one-phase PREPARE committed after a crash (answered %+v): the client was told aborted", replies)
			}
		})
	}
}
