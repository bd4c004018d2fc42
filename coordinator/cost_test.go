package coordinator_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

// costRow is one row of the cost table in docs/protocol.md.
type costRow struct {
	coordSends, partSends, messages, forced, unforced int
}

// readCostTable parses the table of messages and forced writes per case
// from docs/protocol.md, so that the test checks the numbers the document
// states, not a copy of them.
func readCostTable(t *testing.T) map[string]costRow {
	t.Helper()
	f, err := os.Open("../docs/protocol.md")
	if err != nil {
		t.Fatalf("the cost table lives in docs/protocol.md: %v", err)
	}
	defer f.Close()
	lead := func(cell string) int {
		cell = strings.TrimSpace(cell)
		end := 0
		for end < len(cell) && cell[end] >= '0' && cell[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(cell[:end])
		if err != nil {
			t.Fatalf("cost table cell %q does not start with a number", cell)
		}
		return n
	}
	rows := map[string]costRow{}
	sc := bufio.NewScanner(f)
	inTable := false
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "| case") && strings.Contains(line, "coordinator forced writes") {
			inTable = true
			continue
		}
		if !inTable || strings.HasPrefix(line, "|---") {
			continue
		}
		if !strings.HasPrefix(line, "|") {
			break
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		if len(cells) < 6 {
			t.Fatalf("cost table row %q has %d cells", line, len(cells))
		}
		rows[strings.TrimSpace(cells[0])] = costRow{lead(cells[1]), lead(cells[2]), lead(cells[3]), lead(cells[4]), lead(cells[5])}
	}
	if len(rows) == 0 {
		t.Fatal("no cost table found in docs/protocol.md")
	}
	return rows
}

// Messages and log writes per transaction, counted end to end (at the
// participants' HTTP endpoints and in the coordinator's log), match the
// table in docs/protocol.md for every case it lists.
func TestCostsMatchProtocolTable(t *testing.T) {
	table := readCostTable(t)
	ro := func(concord.TxID, json.RawMessage) (concord.Vote, string) { return concord.VoteReadOnly, "" }
	noVote := func(e *env) {
		// The no vote is held until every PREPARE is out: a no vote that
		// arrives first saves the PREPAREs still queued, which the table
		// does not count on.
		e.parts["hotels"].SetVote(voteNoFor("full"))
		e.parts["hotels"].SetPathMode(wire.PathPrepare, testutil.Slow)
		seen := make(chan testutil.Seen, 8)
		e.parts["flights"].Notify(seen)
		e.parts["cars"].Notify(seen)
		e.release = func() {
			waitSeen(t, seen, wire.PathPrepare)
			waitSeen(t, seen, wire.PathPrepare)
			e.parts["hotels"].Release()
		}
	}
	allRO := func(e *env) {
		for _, p := range e.parts {
			p.SetVote(ro)
		}
	}
	// Rows whose name starts "generated id" are submitted without an id;
	// the others with one the client chose.
	cases := []struct {
		prefix   string
		branches []string
		setup    func(e *env)
	}{
		{"commit (3 yes)", []string{"flights", "hotels", "cars"}, func(*env) {}},
		{"abort by one no vote", []string{"flights", "hotels", "cars"}, noVote},
		{"one read-only participant", []string{"flights", "hotels", "cars"}, func(e *env) { e.parts["cars"].SetVote(ro) }},
		{"all read-only", []string{"flights", "hotels", "cars"}, allRO},
		{"one participant", []string{"flights"}, func(*env) {}},
		{"generated id, abort by one no vote", []string{"flights", "hotels", "cars"}, noVote},
		{"generated id, all read-only", []string{"flights", "hotels", "cars"}, allRO},
		{"generated id, one participant", []string{"flights"}, func(*env) {}},
	}
	for _, tc := range cases {
		t.Run(tc.prefix, func(t *testing.T) {
			var want costRow
			found := false
			for name, row := range table {
				if strings.HasPrefix(name, tc.prefix) {
					want, found = row, true
				}
			}
			if !found {
				t.Fatalf("docs/protocol.md has no row for %q", tc.prefix)
			}
			e := newEnv(t, "flights", "hotels", "cars")
			tc.setup(e)
			e.start()
			before := e.c.Stats()
			var id concord.TxID = "costed"
			if strings.HasPrefix(tc.prefix, "generated id") {
				id = ""
			}
			res := e.submitAsync(wire.SubmitRequest{ID: id, Branches: branches(tc.branches...)})
			if e.release != nil {
				e.release()
			}
			r := <-res
			if r.err != nil {
				t.Fatal(r.err)
			}
			resp := r.resp
			eventually(t, "the transaction to finish", func() bool { return e.status(resp.ID).Done })
			if resp.Outcome == concord.OutcomeAborted {
				// ABORT answers are not awaited: wait for the ABORTs to land.
				eventually(t, "aborts delivered", func() bool {
					n := 0
					for _, p := range e.parts {
						n += p.Count(wire.PathAbort)
					}
					return int64(n) == e.c.Stats().AbortMessages
				})
			}
			after := e.c.Stats()
			var got costRow
			for _, p := range e.parts {
				prep, commit, abort := p.Count(wire.PathPrepare), p.Count(wire.PathCommit), p.Count(wire.PathAbort)
				got.coordSends += prep + commit + abort
				got.partSends += prep + commit // a vote per PREPARE, an ack per COMMIT; ABORT answers are not awaited
			}
			got.messages = got.coordSends + got.partSends
			got.forced = int(after.ForcedAppends - before.ForcedAppends)
			got.unforced = int(after.ProtocolRecords-before.ProtocolRecords) - got.forced
			if got != want {
				t.Fatalf("measured %+v, docs/protocol.md says %+v", got, want)
			}
			// A mark the log writes alone once idle (wal.Options.IdleMark)
			// is no transaction's cost: how soon it comes is the machine's.
			syncs := (after.Log.Syncs - after.Log.MarkSyncs) - (before.Log.Syncs - before.Log.MarkSyncs)
			if syncs > int64(want.forced) {
				t.Fatalf("%d log syncs, only %d forced writes needed", syncs, want.forced)
			}
		})
	}
}
