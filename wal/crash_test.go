package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// crashModel is what the appenders of one seed were told.
type crashModel struct {
	mu    sync.Mutex
	acked map[uint64][]byte // records acknowledged as durable
}

func (cm *crashModel) ack(seq uint64, p []byte) {
	cm.mu.Lock()
	cm.acked[seq] = p
	cm.mu.Unlock()
}

// crashPayload is unique per (round, goroutine, index) and checkable.
func crashPayload(round, g, i, size int) []byte {
	p := fmt.Appendf(nil, "r%d g%d i%d ", round, g, i)
	for len(p) < size {
		p = append(p, byte('a'+len(p)%26))
	}
	return p
}

func TestCrashSimulation(t *testing.T) {
	seeds := 1000
	if testing.Short() {
		seeds = 100
	}
	for _, prealloc := range []int64{0, -1} { // default, and disabled
		t.Run(fmt.Sprintf("preallocate=%d", prealloc), func(t *testing.T) {
			var acked, torn int
			for seed := range seeds {
				a, tc, ok := crashSeed(t, uint64(seed), prealloc)
				if !ok {
					t.Fatalf("seed %d failed; rerun it alone with the same number", seed)
				}
				acked += a
				torn += tc
			}
			t.Logf("%d seeds: %d acknowledged records checked, %d torn tails repaired", seeds, acked, torn)
			// The test must have exercised both durability and tail repair.
			if acked < seeds || torn < seeds/100 {
				t.Fatalf("too little exercised: %d acknowledged, %d torn tails", acked, torn)
			}
		})
	}
}

// crashSeed runs a few rounds of concurrent appends, each ended by a crash
// at a random moment, and checks the log after each. It returns how many
// acknowledged records it checked, how many torn tails were cut, and success.
func crashSeed(t *testing.T, seed uint64, prealloc int64) (int, int, bool) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	m := memfs.New()
	segSize := int64(128 + rng.IntN(1024))
	opts := wal.Options{Dir: testDir, FS: m, SegmentSize: segSize, Preallocate: prealloc}
	cm := &crashModel{acked: map[uint64][]byte{}}
	rounds := 1 + rng.IntN(3)
	for round := range rounds {
		l, err := wal.Open(opts)
		if err != nil {
			t.Errorf("seed %d round %d: open: %v", seed, round, err)
			return 0, 0, false
		}
		if !checkCrashLog(t, seed, round, l, cm) {
			l.Close()
			return 0, 0, false
		}
		goroutines := 1 + rng.IntN(8)
		perG := 1 + rng.IntN(12)
		crashAt := int64(rng.IntN(goroutines*perG + 1))
		partial := rng.IntN(2) == 0
		crashRNG := rand.New(rand.NewPCG(seed, uint64(round)))
		var done atomic.Int64
		var crashOnce sync.Once
		crash := func() {
			crashOnce.Do(func() {
				if partial {
					m.CrashPartial(crashRNG)
				} else {
					m.Crash()
				}
			})
		}
		var wg sync.WaitGroup
		for g := range goroutines {
			kinds := make([]int, perG)
			sizes := make([]int, perG)
			for i := range kinds {
				kinds[i], sizes[i] = rng.IntN(4), rng.IntN(90)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				var async []wal.Record // appended without waiting, not yet known durable
				for i := range perG {
					if done.Add(1) == crashAt {
						crash()
					}
					p := crashPayload(round, g, i, sizes[i])
					switch kinds[i] {
					case 0: // async
						seq, err := l.AppendAsync(1, p)
						if err != nil {
							return
						}
						async = append(async, wal.Record{Seq: seq, Payload: p})
					case 1: // batch of two, synced
						q := crashPayload(round, g, i+1000, sizes[i])
						seq, err := l.AppendBatch([]wal.Entry{{Type: 2, Payload: p}, {Type: 2, Payload: q}}, true)
						if err != nil {
							return
						}
						cm.ack(seq, p)
						cm.ack(seq+1, q)
					default:
						seq, err := l.Append(3, p)
						if err != nil {
							return
						}
						cm.ack(seq, p)
					}
					if kinds[i] != 0 {
						// A synced append makes this goroutine's earlier
						// async records durable too.
						for _, r := range async {
							cm.ack(r.Seq, r.Payload)
						}
						async = async[:0]
					}
				}
			}()
		}
		wg.Wait()
		crash() // if no appender reached crashAt
		l.Close()
	}
	l, err := wal.Open(opts)
	if err != nil {
		t.Errorf("seed %d: final open: %v", seed, err)
		return 0, 0, false
	}
	defer l.Close()
	ok := checkCrashLog(t, seed, rounds, l, cm)
	return len(cm.acked), len(tornCopies(t, m)), ok
}

// checkCrashLog checks that l holds every acknowledged record with its
// payload, that sequence numbers run without gaps, and that every other
// record is one some appender tried, intact, appearing once and after that
// appender's earlier records.
func checkCrashLog(t *testing.T, seed uint64, round int, l *wal.Log, cm *crashModel) bool {
	t.Helper()
	recs := replayAll(t, l)
	byseq := make(map[uint64][]byte, len(recs))
	seen := map[string]bool{}
	lastI := map[string]int{} // "r g" -> last index seen
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Errorf("seed %d round %d: record %d has seq %d", seed, round, i, r.Seq)
			return false
		}
		byseq[r.Seq] = r.Payload
		var rr, g, idx int
		if _, err := fmt.Sscanf(string(r.Payload), "r%d g%d i%d ", &rr, &g, &idx); err != nil {
			t.Errorf("seed %d round %d: record %d holds foreign bytes %q", seed, round, r.Seq, r.Payload)
			return false
		}
		if want := crashPayload(rr, g, idx, len(r.Payload)); !bytes.Equal(want, r.Payload) {
			t.Errorf("seed %d round %d: record %d corrupted: %q", seed, round, r.Seq, r.Payload)
			return false
		}
		if seen[string(r.Payload)] {
			t.Errorf("seed %d round %d: record %q appears twice", seed, round, r.Payload)
			return false
		}
		seen[string(r.Payload)] = true
		key := fmt.Sprintf("%d %d", rr, g)
		if prev, ok := lastI[key]; ok && idx%1000 <= prev%1000 && idx != prev+1000 {
			t.Errorf("seed %d round %d: record %q out of order after index %d", seed, round, r.Payload, prev)
			return false
		}
		lastI[key] = idx
	}
	cm.mu.Lock()
	defer cm.mu.Unlock()
	for seq, p := range cm.acked {
		got, ok := byseq[seq]
		if !ok || !bytes.Equal(got, p) {
			t.Errorf("seed %d round %d: acknowledged record %d %q lost (log has %d records, holds %q)", seed, round, seq, p, len(recs), got)
			return false
		}
	}
	return true
}

func TestSyncFailurePoisons(t *testing.T) {
	for _, op := range []memfs.Op{memfs.OpSync, memfs.OpWrite} {
		t.Run(string(op), func(t *testing.T) {
			m := memfs.New()
			l := openMem(t, m, 0)
			appendN(t, l, 1, 5)
			boom := errors.New("disk on fire")
			m.FailNth(op, 1, boom)
			_, err := l.Append(1, payload(6))
			if !errors.Is(err, wal.ErrPoisoned) || !errors.Is(err, boom) {
				t.Fatalf("append with failing %s = %v, want ErrPoisoned wrapping the cause", op, err)
			}
			syncs := m.Count(memfs.OpSync)
			// Every later operation fails, and no fsync is retried.
			if _, err := l.Append(1, payload(7)); !errors.Is(err, wal.ErrPoisoned) {
				t.Fatalf("later Append = %v, want ErrPoisoned", err)
			}
			if _, err := l.AppendAsync(1, payload(7)); !errors.Is(err, wal.ErrPoisoned) {
				t.Fatalf("later AppendAsync = %v, want ErrPoisoned", err)
			}
			if _, err := l.AppendBatch([]wal.Entry{{}}, true); !errors.Is(err, wal.ErrPoisoned) {
				t.Fatalf("later AppendBatch = %v, want ErrPoisoned", err)
			}
			if err := l.Sync(); !errors.Is(err, wal.ErrPoisoned) {
				t.Fatalf("later Sync = %v, want ErrPoisoned", err)
			}
			if got := m.Count(memfs.OpSync); got != syncs {
				t.Fatalf("%d fsyncs after the failure; a poisoned log must not retry", got-syncs)
			}
			if err := l.Close(); !errors.Is(err, wal.ErrPoisoned) {
				t.Fatalf("Close = %v, want ErrPoisoned", err)
			}
			m.Crash()
			l = openMem(t, m, 0)
			defer l.Close()
			checkRecords(t, replayAll(t, l), 5)
		})
	}
}

func TestSyncFailureConcurrent(t *testing.T) {
	// Many appenders; one fsync fails. Nothing is acknowledged after it:
	// every append that succeeded has a smaller sequence number than every
	// append that failed, and every acknowledged one survives a crash.
	for n := 1; n <= 20; n++ {
		m := memfs.New()
		l := openMem(t, m, 512)
		m.FailNth(memfs.OpSync, n, errors.New("injected"))
		var mu sync.Mutex
		var okSeqs []uint64
		failed := 0
		var wg sync.WaitGroup
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 10 {
					seq, err := l.Append(uint8((g*10+i)%7), payload(g*10+i))
					mu.Lock()
					if err == nil {
						okSeqs = append(okSeqs, seq)
					} else if errors.Is(err, wal.ErrPoisoned) {
						failed++
					} else {
						t.Errorf("unexpected error %v", err)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failed == 0 {
			t.Fatalf("fail sync %d: no append failed", n)
		}
		if _, err := l.Append(0, nil); !errors.Is(err, wal.ErrPoisoned) {
			t.Fatalf("append after failure = %v", err)
		}
		l.Close()
		m.Crash()
		l = openMem(t, m, 512)
		have := map[uint64]bool{}
		for _, r := range replayAll(t, l) {
			have[r.Seq] = true
		}
		for _, s := range okSeqs {
			if !have[s] {
				t.Fatalf("fail sync %d: acknowledged record %d lost", n, s)
			}
		}
		l.Close()
	}
}

func TestRollFailurePoisons(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 1) // every batch rolls
	appendN(t, l, 1, 3)
	m.FailNth(memfs.OpSyncDir, 1, errors.New("dir sync failed"))
	if _, err := l.Append(1, payload(4)); !errors.Is(err, wal.ErrPoisoned) {
		t.Fatalf("append whose roll fails = %v, want ErrPoisoned", err)
	}
	if _, err := l.Append(1, payload(5)); !errors.Is(err, wal.ErrPoisoned) {
		t.Fatalf("later append = %v, want ErrPoisoned", err)
	}
	l.Close()
}
