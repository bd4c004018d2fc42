package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// TestHelperParticipantProcess is not a test: it is the participant
// process TestParticipantSurvivesSIGKILL starts (this test binary,
// re-executed), so that it can be killed for real.
func TestHelperParticipantProcess(t *testing.T) {
	args := os.Getenv("CONCORD_HELPER_PARTICIPANT_ARGS")
	if args == "" {
		t.Skip("started only as a child process")
	}
	os.Exit(runParticipant(context.Background(), strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// startParticipantProcess starts a participant process and returns it with
// its URL.
func startParticipantProcess(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	return startHelperProcess(t, "Participant", []string{"CONCORD_HELPER_PARTICIPANT_ARGS=" + strings.Join(args, "\x1f")}, nil)
}

// TestParticipantSurvivesSIGKILL kills a real participant process with
// SIGKILL right after it voted yes on two reservations. Restarted on the
// same data directory it still holds both (they were on disk before the
// votes), asks the coordinator about each, and applies what it answers:
// commit for one, abort (no record: presumed abort) for the other, with the
// inventory conserved.
func TestParticipantSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	// The coordinator's outcome endpoint: one committed, anything else
	// unknown, hence aborted.
	asked := make(chan concord.TxID, 100)
	coord := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := concord.TxID(strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, wire.PathTransactions+"/"), "/outcome"))
		asked <- id
		out := concord.OutcomeAborted
		if id == "kill-commit" {
			out = concord.OutcomeCommitted
		}
		wire.WriteJSON(w, http.StatusOK, wire.OutcomeResponse{ID: id, Outcome: out})
	}))
	defer coord.Close()

	dir := t.TempDir()
	args := []string{"--service", "hotels", "--listen", "127.0.0.1:0", "--data", dir, "--coordinator", coord.URL,
		"--inventory", "H-PARIS=10", "--in-doubt-after", "1h"}
	cmd, url := startParticipantProcess(t, args...)
	pc := &wire.ParticipantClient{BaseURL: url}
	ctx := t.Context()
	resp, err := pc.Prepare(ctx, wire.PrepareRequest{Coordinator: coord.URL, Transactions: []wire.PrepareTx{
		{ID: "kill-commit", Payload: travel.Request{SKU: "H-PARIS", Quantity: 3}.Payload()},
		{ID: "kill-abort", Payload: travel.Request{SKU: "H-PARIS", Quantity: 4}.Payload()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range resp.Votes {
		if v.Vote != concord.VoteYes {
			t.Fatalf("vote %+v", v)
		}
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// Back on the same data, asking the coordinator soon.
	args[len(args)-1] = "50ms"
	_, url = startParticipantProcess(t, args...)
	get := func(path string, v any) {
		t.Helper()
		if err := wire.Do(ctx, http.DefaultClient, "GET", url+path, nil, v); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var list travel.ReservationList
		get(travel.PathReservations, &list)
		states := map[concord.TxID]travel.State{}
		for _, r := range list.Reservations {
			states[r.ID] = r.State
		}
		if states["kill-commit"] == travel.StateCommitted && states["kill-abort"] == travel.StateAborted {
			break
		}
		if states["kill-commit"] == "" || states["kill-abort"] == "" {
			t.Fatalf("a reservation voted yes on was lost in the kill: %+v", list.Reservations)
		}
		if states["kill-commit"] == travel.StateAborted || states["kill-abort"] == travel.StateCommitted {
			t.Fatalf("resolved against the coordinator's answer: %+v", list.Reservations)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not resolved: %+v", list.Reservations)
		}
		time.Sleep(10 * time.Millisecond) // a real process resolving on its own clock
	}
	var inv travel.InventoryResponse
	get(travel.PathInventory, &inv)
	if len(inv.Items) != 1 || inv.Items[0] != (travel.Item{SKU: "H-PARIS", Capacity: 10, Available: 7, Held: 0, Confirmed: 3}) {
		t.Fatalf("inventory after recovery: %+v", inv.Items)
	}
	if len(asked) < 2 {
		t.Fatalf("the coordinator was asked %d times", len(asked))
	}
}
