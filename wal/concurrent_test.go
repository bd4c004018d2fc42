package wal_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// TestConcurrentAppendReplayCompact runs appenders, readers, a compactor and
// Stats together (under -race in CI): each Replay sees consecutive records
// holding what was appended, and every acknowledged record at or after the
// compaction point is there at the end.
func TestConcurrentAppendReplayCompact(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 400)
	var wg sync.WaitGroup
	var stop atomic.Bool
	var compactedTo atomic.Uint64
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				var err error
				if i%3 == 0 {
					_, err = l.AppendAsync(uint8(g), []byte("async"))
				} else {
					_, err = l.Append(uint8(g), []byte("sync"))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for !stop.Load() {
				var prev uint64
				err := l.Replay(0, func(r wal.Record) error {
					if prev != 0 && r.Seq != prev+1 {
						t.Errorf("replay: %d after %d", r.Seq, prev)
					}
					if s := string(r.Payload); s != "sync" && s != "async" {
						t.Errorf("replay: record %d holds %q", r.Seq, s)
					}
					prev = r.Seq
					return nil
				})
				if err != nil {
					t.Error(err)
					return
				}
				_ = l.Stats()
			}
		}()
	}
	readers.Add(1)
	go func() {
		defer readers.Done()
		for !stop.Load() {
			before := l.DurableSeq() / 2
			if err := l.Compact(before); err != nil {
				t.Error(err)
				return
			}
			compactedTo.Store(before)
		}
	}()
	wg.Wait()
	stop.Store(true)
	readers.Wait()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	recs := replayAll(t, l)
	last := recs[len(recs)-1].Seq
	if last != 400 || recs[0].Seq > max(compactedTo.Load(), 1) {
		t.Fatalf("log holds %d..%d after 400 appends compacted to %d", recs[0].Seq, last, compactedTo.Load())
	}
	l.Close()
}
