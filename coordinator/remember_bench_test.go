package coordinator

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/race"
	"github.com/concordtx/concord/tpc"
)

// BenchmarkRemembered is the remembered set's cost per transaction as the
// coordinator pays it: (lookup) a client-chosen id looked up, a miss, at
// admission; (write) the finished transaction added at its end and written
// out in batches of rememberFlushAt, with one sync each. It reports the
// store's bytes on disk per remembered transaction.
//
//	go test -run NONE -bench Remembered -benchtime 200000x ./coordinator
func BenchmarkRemembered(b *testing.B) {
	b.Run("lookup+write", func(b *testing.B) { benchRemembered(b, true) })
	b.Run("write", func(b *testing.B) { benchRemembered(b, false) })
}

func benchRemembered(b *testing.B, lookup bool) {
	if race.Enabled {
		b.Skip("timing under the race detector means nothing")
	}
	path := filepath.Join(b.TempDir(), "remembered")
	back, oldest, err := openPebble(path, nil)
	if err != nil {
		b.Fatal(err)
	}
	r := newRemembered(back, oldest, DefaultIdempotencyWindow, RealClock{}, b.Logf)
	defer r.close(true)
	branches := []tpc.BranchStatus{
		{Participant: "flights", Vote: concord.VoteYes, Acknowledged: true},
		{Participant: "hotels", Vote: concord.VoteYes, Acknowledged: true},
		{Participant: "cars", Vote: concord.VoteYes, Acknowledged: true},
	}
	now := time.Now().UnixNano()
	b.ResetTimer()
	for i := range b.N {
		id := concord.TxID(fmt.Sprintf("tx-%024x", uint64(i)*0x9e3779b97f4a7c15)) // spread as random ids are
		if lookup {
			if f, err := r.get(id); f != nil || err != nil {
				b.Fatal(f, err)
			}
		}
		r.mu.Lock()
		r.pending[id] = &finishedTx{status: tpc.Status{TxID: id, Outcome: concord.OutcomeCommitted, Branches: branches, Done: true},
			digest: digest{1, 2, 3}, finished: now + int64(i)}
		full := len(r.pending) >= rememberFlushAt
		r.mu.Unlock()
		if full {
			if err := r.flush(); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := r.flush(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	if b.N >= 10000 {
		var blocks int64
		filepath.WalkDir(path, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					if n, ok := statBlocks(fi); ok {
						blocks += n
					}
				}
			}
			return nil
		})
		b.ReportMetric(float64(blocks)*512/float64(b.N), "disk-B/tx")
	}
}
