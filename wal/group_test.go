package wal_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"

	"github.com/concordtx/concord/wal/memfs"
)

// TestGroupCommit holds every fsync until all 64 appenders are blocked
// (testing/synctest tells when), as a slow disk would: each fsync must then
// cover many appends.
func TestGroupCommit(t *testing.T) {
	const appenders, each = 64, 20
	synctest.Test(t, func(t *testing.T) {
		m := memfs.New()
		l := openMem(t, m, 0)
		gate := make(chan struct{})
		m.SetFault(func(op memfs.Op, _ string) error {
			if op == memfs.OpSync {
				<-gate // the disk is busy until the test lets it finish
			}
			return nil
		})
		var finished atomic.Int64
		var wg sync.WaitGroup
		for g := range appenders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					if _, err := l.Append(uint8(g), payload(i)); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
				finished.Add(1)
			}()
		}
		for {
			synctest.Wait() // every goroutine is blocked: on a batch, or in fsync
			if finished.Load() == appenders {
				break
			}
			gate <- struct{}{}
		}
		wg.Wait()
		m.SetFault(nil)
		st := l.Stats()
		if st.Appends != appenders*each {
			t.Fatalf("%d appends counted, want %d", st.Appends, appenders*each)
		}
		perAppend := float64(st.Syncs) / float64(st.Appends)
		t.Logf("%d appends, %d fsyncs (%.3f per append), %d writes", st.Appends, st.Syncs, perAppend, st.Writes)
		if perAppend >= 0.25 {
			t.Fatalf("%.3f fsyncs per append, want < 0.25", perAppend)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAppendersEnqueueDuringSync shows that the queue is not locked across
// an fsync: while one fsync is held, other appends are accepted (and
// AppendAsync returns).
func TestAppendersEnqueueDuringSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memfs.New()
		l := openMem(t, m, 0)
		gate := make(chan struct{})
		m.SetFault(func(op memfs.Op, _ string) error {
			if op == memfs.OpSync {
				<-gate
			}
			return nil
		})
		first := make(chan error, 1)
		go func() { _, err := l.Append(1, []byte("first")); first <- err }()
		synctest.Wait() // the first append's fsync is now held
		for i := range 100 {
			if _, err := l.AppendAsync(2, payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		if got := l.LastSeq(); got != 101 {
			t.Fatalf("LastSeq = %d during a held fsync, want 101", got)
		}
		gate <- struct{}{}
		if err := <-first; err != nil {
			t.Fatal(err)
		}
		m.SetFault(nil)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if got := l.DurableSeq(); got != 101 {
			t.Fatalf("DurableSeq = %d, want 101", got)
		}
		l.Close()
	})
}
