package wal_test

import (
	"bytes"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// flushStacks records, for every write and fsync of a segment, whether it
// ran on the log's writer goroutine.
type flushStacks struct {
	mu       sync.Mutex
	byWriter map[memfs.Op]int
	byCaller map[memfs.Op]int
}

// zeroWrites is the writes of zeros a log's first flush adds to the write
// of its records (Options.Preallocate, 1 MiB by default, is enough for
// every test here).
const zeroWrites = 1

// watchFlushes starts recording; with a non-nil gate, each segment fsync
// waits for a value from it.
func watchFlushes(m *memfs.FS, gate chan struct{}) *flushStacks {
	s := &flushStacks{byWriter: map[memfs.Op]int{}, byCaller: map[memfs.Op]int{}}
	m.SetFault(func(op memfs.Op, name string) error {
		if (op != memfs.OpWrite && op != memfs.OpSync) || !strings.HasSuffix(name, ".wal") {
			return nil
		}
		buf := make([]byte, 64<<10)
		stack := string(buf[:runtime.Stack(buf, false)])
		s.mu.Lock()
		if strings.Contains(stack, "(*Log).writer(") {
			s.byWriter[op]++
		} else {
			s.byCaller[op]++
		}
		s.mu.Unlock()
		if op == memfs.OpSync && gate != nil {
			<-gate
		}
		return nil
	})
	return s
}

// TestLoneAppenderFlushesItself checks that with no flush under way a
// synchronous append writes and syncs in the caller's goroutine rather than
// handing its batch to the writer goroutine and waiting to be woken, and that
// an isolated AppendAsync writes its record before it returns.
func TestLoneAppenderFlushesItself(t *testing.T) {
	ops := map[string]func(l *wal.Log) error{
		"Append": func(l *wal.Log) error {
			_, err := l.Append(1, []byte("a"))
			return err
		},
		"AppendBatch": func(l *wal.Log) error {
			_, err := l.AppendBatch([]wal.Entry{{Type: 1, Payload: []byte("a")}, {Type: 2}}, true)
			return err
		},
		"AppendAsync+Sync": func(l *wal.Log) error {
			if _, err := l.AppendAsync(1, []byte("a")); err != nil {
				return err
			}
			return l.Sync()
		},
	}
	for name, op := range ops {
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				m := memfs.New()
				l := openMem(t, m, 0)
				defer l.Close()
				s := watchFlushes(m, nil)
				for range 5 {
					time.Sleep(time.Millisecond) // not part of a run of appends
					if err := op(l); err != nil {
						t.Fatal(err)
					}
				}
				m.SetFault(nil)
				s.mu.Lock()
				defer s.mu.Unlock()
				if len(s.byWriter) > 0 || s.byCaller[memfs.OpWrite] != 5+zeroWrites || s.byCaller[memfs.OpSync] != 5 {
					t.Fatalf("writes and fsyncs by the writer goroutine %v, by the caller %v; want 5 of each (and %d write of zeros) by the caller",
						s.byWriter, s.byCaller, zeroWrites)
				}
			})
		})
	}
}

// TestLeaderHandsOver checks that appends arriving during a flush are
// flushed together, after it, by one of their own goroutines.
func TestLeaderHandsOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memfs.New()
		l := openMem(t, m, 0)
		defer l.Close()
		gate := make(chan struct{})
		s := watchFlushes(m, gate)
		var wg sync.WaitGroup
		appendGo := func(i int) {
			wg.Go(func() {
				if _, err := l.Append(1, payload(i)); err != nil {
					t.Error(err)
				}
			})
		}
		appendGo(0)
		synctest.Wait() // its fsync is held
		for i := 1; i <= 10; i++ {
			appendGo(i)
		}
		synctest.Wait() // the ten wait for the held flush
		gate <- struct{}{}
		synctest.Wait() // the next batch's fsync is held
		if got := l.DurableSeq(); got != 1 {
			t.Fatalf("DurableSeq = %d after the first flush, want 1", got)
		}
		gate <- struct{}{}
		wg.Wait()
		m.SetFault(nil)
		if got := l.DurableSeq(); got != 11 {
			t.Fatalf("DurableSeq = %d, want 11", got)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.byWriter) > 0 || s.byCaller[memfs.OpWrite] != 2+zeroWrites || s.byCaller[memfs.OpSync] != 2 {
			t.Fatalf("writes and fsyncs by the writer goroutine %v, by appenders %v; want 2 of each (and %d write of zeros) by appenders",
				s.byWriter, s.byCaller, zeroWrites)
		}
		if recs := replayAll(t, l); len(recs) != 11 {
			t.Fatalf("log holds %d records, want 11", len(recs))
		}
	})
}

// TestAsyncRunIsBatched checks that of a run of AppendAsync calls only the
// first writes in the caller's goroutine: the others are left to the writer
// goroutine, which writes whatever has gathered each time it runs, and they
// are written without anyone waiting.
func TestAsyncRunIsBatched(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := memfs.New()
		l := openMem(t, m, 0)
		defer l.Close()
		s := watchFlushes(m, nil)
		const n = 200
		for i := range n {
			if _, err := l.AppendAsync(1, payload(i)); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait() // the writer goroutine is idle again
		m.SetFault(nil)
		s.mu.Lock()
		byCaller, byWriter := s.byCaller[memfs.OpWrite], s.byWriter[memfs.OpWrite]
		s.mu.Unlock()
		if byCaller != 1+zeroWrites {
			t.Fatalf("%d writes in the appending goroutine for %d records appended in a run (%d by the writer goroutine), want %d",
				byCaller, n, byWriter, 1+zeroWrites)
		}
		data, err := m.ReadFile(testDir + "/" + firstSegment(t, m))
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if !bytes.Contains(data, payload(i)) {
				t.Fatalf("record %d not written without a wait", i+1)
			}
		}
	})
}

func firstSegment(t *testing.T, m *memfs.FS) string {
	t.Helper()
	names, err := m.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			return n
		}
	}
	t.Fatal("no segment")
	return ""
}

// TestCloseDuringFlush closes the log while a flush is held and records wait
// for the next one: Close returns once they are all durable, whether it
// leads that next flush itself or waits for an appender that does.
func TestCloseDuringFlush(t *testing.T) {
	for _, withLeader := range []bool{false, true} {
		synctest.Test(t, func(t *testing.T) {
			m := memfs.New()
			l := openMem(t, m, 0)
			gate := make(chan struct{})
			watchFlushes(m, gate)
			var wg sync.WaitGroup
			wg.Go(func() {
				if _, err := l.Append(1, payload(1)); err != nil {
					t.Error(err)
				}
			})
			synctest.Wait() // its fsync is held
			for i := 2; i <= 4; i++ {
				if _, err := l.AppendAsync(uint8(i%7), payload(i)); err != nil {
					t.Fatal(err)
				}
			}
			want := 4
			if withLeader {
				want = 5
				wg.Go(func() {
					if _, err := l.Append(5, payload(5)); err != nil {
						t.Error(err)
					}
				})
				synctest.Wait()
			}
			closed := make(chan error, 1)
			go func() { closed <- l.Close() }()
			for {
				synctest.Wait()
				select {
				case err := <-closed:
					if err != nil {
						t.Fatalf("Close: %v", err)
					}
					wg.Wait()
					m.SetFault(nil)
					m.Crash()
					l = openMem(t, m, 0)
					checkRecords(t, replayAll(t, l), want)
					l.Close()
					return
				case gate <- struct{}{}:
				}
			}
		})
	}
}
