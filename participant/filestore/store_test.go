package filestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

func openMem(t *testing.T, fs *memfs.FS, m filestore.Machine, every int) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: m, SnapshotEvery: every})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

func prepare(t *testing.T, s *filestore.Store, id concord.TxID, take int) participant.PrepareResult {
	t.Helper()
	r, err := s.Prepare(context.Background(), id, takePayload(take), participant.PrepareInfo{})
	if err != nil {
		t.Fatalf("Prepare(%s) = %v", id, err)
	}
	return r
}

// checkConserved asserts the counter's books balance and that its holds
// are exactly the store's prepared transactions.
func checkConserved(t *testing.T, s *filestore.Store, c *counter) {
	t.Helper()
	ids, err := s.Recover(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	s.View(func() {
		if c.Available+c.held()+c.Confirmed != c.Capacity {
			t.Fatalf("available %d + held %d + confirmed %d != capacity %d", c.Available, c.held(), c.Confirmed, c.Capacity)
		}
		if len(ids) != len(c.Holds) {
			t.Fatalf("store lists %d prepared, machine holds %d", len(ids), len(c.Holds))
		}
		for _, tx := range ids {
			if _, ok := c.Holds[tx.ID]; !ok {
				id := tx.ID
				t.Fatalf("prepared %s has no hold", id)
			}
		}
	})
}

// TestSnapshotCompactsAndRestores: snapshots are taken as records
// accumulate, the log is compacted behind them, and reopening restores the
// same state, holds and remembered decisions included.
func TestSnapshotCompactsAndRestores(t *testing.T) {
	fs := memfs.New()
	c := newCounter(1000)
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: c, SnapshotEvery: 20, SegmentSize: 512})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i := range 200 {
		id := concord.TxID(fmt.Sprintf("t%03d", i))
		if r := prepare(t, s, id, 1); r.Vote != concord.VoteYes {
			t.Fatalf("vote %s", r.Vote)
		}
		switch i % 3 {
		case 0:
			if err := s.Commit(ctx, id); err != nil {
				t.Fatal(err)
			}
		case 1:
			if err := s.Abort(ctx, id); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	if st.Snapshots < 2 || st.Log.SegmentsRemoved == 0 {
		t.Fatalf("after 333 records: %d snapshots, %d segments removed; want several of each", st.Snapshots, st.Log.SegmentsRemoved)
	}
	checkConserved(t, s, c)
	wantAvail, wantConf := c.Available, c.Confirmed
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, _ := fs.ReadDir("/data")
	if len(names) != 1 || !strings.HasPrefix(names[0], "snapshot-") {
		t.Fatalf("files beside the log: %v; want exactly one snapshot", names)
	}

	c2 := newCounter(1000)
	s2 := openMem(t, fs, c2, 20)
	defer s2.Close()
	if st := s2.Stats(); st.Replayed > 20 {
		t.Errorf("reopen replayed %d records; the snapshot should bound it", st.Replayed)
	}
	checkConserved(t, s2, c2)
	if c2.Available != wantAvail || c2.Confirmed != wantConf || len(c2.Holds) != 66 {
		t.Fatalf("restored available %d confirmed %d holds %d; want %d %d 66", c2.Available, c2.Confirmed, len(c2.Holds), wantAvail, wantConf)
	}
	// Decisions remembered across the snapshot.
	if err := s2.Abort(ctx, "t000"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Fatalf("abort of committed t000 after restore = %v", err)
	}
	if r := prepare(t, s2, "t001", 1); r.Vote != concord.VoteNo {
		t.Fatalf("prepare of aborted t001 after restore voted %s", r.Vote)
	}
	if err := s2.Commit(ctx, "t002"); err != nil {
		t.Fatalf("commit of prepared t002 after restore = %v", err)
	}
}

// TestCrashAnywhere runs random transactions from several goroutines,
// crashes the file system at a random moment (keeping a random part of
// unsynced writes: torn writes), reopens, and checks over many seeds that
// every acknowledged prepare and commit survived, nothing committed that
// was not asked to, and the books balance.
func TestCrashAnywhere(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 50
	}
	for seed := range seeds {
		crashOnce(t, uint64(seed))
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
}

type ack struct {
	prepared, committed, commitAsked bool
	take                             int
}

func crashOnce(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 42))
	fs := memfs.New()
	const capacity = 60
	c := newCounter(capacity)
	s := openMem(t, fs, c, 3+rng.IntN(20))
	const workers = 4
	var mu sync.Mutex
	acks := map[concord.TxID]*ack{}
	crashAfter := rng.IntN(60)
	var wg sync.WaitGroup
	done := make(chan struct{})
	var ops int
	var crashOnce sync.Once
	crash := func() { crashOnce.Do(func() { fs.CrashPartial(rand.New(rand.NewPCG(seed, 7))); close(done) }) }
	for w := range workers {
		wrng := rand.New(rand.NewPCG(seed, uint64(w)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				id := concord.TxID(fmt.Sprintf("w%d-%d", w, i))
				take := 1 + wrng.IntN(3)
				a := &ack{take: take}
				mu.Lock()
				acks[id] = a
				ops++
				if ops > crashAfter {
					mu.Unlock()
					crash()
					return
				}
				mu.Unlock()
				if wrng.IntN(4) == 0 {
					mu.Lock()
					a.commitAsked = true
					mu.Unlock()
					o, _, err := s.CommitOnePhase(ctx, id, takePayload(take), participant.PrepareInfo{})
					if err != nil {
						return
					}
					mu.Lock()
					a.committed = o == concord.OutcomeCommitted
					mu.Unlock()
					continue
				}
				r, err := s.Prepare(ctx, id, takePayload(take), participant.PrepareInfo{})
				if err != nil {
					return
				}
				if r.Vote != concord.VoteYes {
					continue
				}
				mu.Lock()
				a.prepared = true
				mu.Unlock()
				switch wrng.IntN(3) {
				case 0:
					mu.Lock()
					a.commitAsked = true
					mu.Unlock()
					if err := s.Commit(ctx, id); err != nil {
						return
					}
					mu.Lock()
					a.committed = true
					mu.Unlock()
				case 1:
					if err := s.Abort(ctx, id); err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	crash()
	s.Close() // fails: its files are gone with the crash

	c2 := newCounter(capacity)
	s2, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: c2})
	if err != nil {
		t.Fatalf("seed %d: reopen after crash: %v", seed, err)
	}
	defer s2.Close()
	checkConserved(t, s2, c2)
	confirmed := 0
	for id, a := range acks {
		st, _ := s2.State(id)
		if a.prepared && st == filestore.StateUnknown {
			t.Errorf("seed %d: %s voted yes before the crash and is unknown after it", seed, id)
		}
		if a.committed && st != filestore.StateCommitted {
			t.Errorf("seed %d: %s acknowledged committed before the crash and is %s after it", seed, id, st)
		}
		if st == filestore.StateCommitted {
			if !a.commitAsked {
				t.Errorf("seed %d: %s is committed but no commit was asked", seed, id)
			}
			confirmed += a.take
		}
	}
	s2.View(func() {
		if c2.Confirmed != confirmed {
			t.Errorf("seed %d: confirmed %d, committed transactions took %d", seed, c2.Confirmed, confirmed)
		}
	})
}

// TestSyncFailureBreaksStore: when the log cannot sync, the prepare fails
// (no yes vote), every later call fails with ErrFailed, and a reopened
// store holds only what was durable.
func TestSyncFailureBreaksStore(t *testing.T) {
	fs := memfs.New()
	c := newCounter(10)
	s := openMem(t, fs, c, 1000)
	ctx := context.Background()
	if r := prepare(t, s, "ok", 1); r.Vote != concord.VoteYes {
		t.Fatal(r)
	}
	fs.FailNth(memfs.OpSync, 1, errors.New("injected EIO"))
	if r, err := s.Prepare(ctx, "bad", takePayload(1), participant.PrepareInfo{}); err == nil {
		t.Fatalf("prepare whose sync failed = %+v, nil; want an error, never a yes vote", r)
	}
	if err := s.Commit(ctx, "ok"); !errors.Is(err, filestore.ErrFailed) {
		t.Fatalf("commit after the failure = %v, want ErrFailed", err)
	}
	if _, err := s.Recover(ctx); !errors.Is(err, filestore.ErrFailed) {
		t.Fatalf("recover after the failure = %v, want ErrFailed", err)
	}
	s.Close()
	fs.Crash()
	c2 := newCounter(10)
	s2 := openMem(t, fs, c2, 1000)
	defer s2.Close()
	if st, _ := s2.State("ok"); st != filestore.StatePrepared {
		t.Fatalf("ok is %s after reopen, want prepared", st)
	}
	checkConserved(t, s2, c2)
}

// flaky votes yes the first time it sees an id and no afterwards: not
// deterministic.
type flaky struct {
	counter
	seen map[concord.TxID]bool
}

func (f *flaky) Prepare(id concord.TxID, p json.RawMessage) participant.PrepareResult {
	if f.seen[id] {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "changed its mind"}
	}
	f.seen[id] = true
	return f.counter.Prepare(id, p)
}

func TestNondeterministicMachineRefusedOnOpen(t *testing.T) {
	fs := memfs.New()
	shared := map[concord.TxID]bool{}
	s := openMem(t, fs, &flaky{*newCounter(5), shared}, 1000)
	prepare(t, s, "a", 1)
	s.Close()
	_, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: &flaky{*newCounter(5), shared}})
	if !errors.Is(err, filestore.ErrNondeterministic) || !strings.Contains(err.Error(), "a") {
		t.Fatalf("open = %v, want ErrNondeterministic naming the transaction", err)
	}
}

func TestCorruptSnapshotRefusedOnOpen(t *testing.T) {
	fs := memfs.New()
	s := openMem(t, fs, newCounter(5), 1000)
	prepare(t, s, "a", 1)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	names, _ := fs.ReadDir("/data")
	name := "/data/" + names[0]
	b, _ := fs.ReadFile(name)
	b[len(b)/2] ^= 0x10
	fs.WriteFile(name, b)
	_, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(5)})
	if !errors.Is(err, filestore.ErrCorrupt) || !strings.Contains(err.Error(), names[0]) {
		t.Fatalf("open = %v, want ErrCorrupt naming %s", err, names[0])
	}
}

// TestRetentionByTime: a decision is remembered until its deadline plus
// the skew allowance by the store's clock, however many decisions follow,
// and forgotten after it; the remembered set (with each one's deadline)
// survives a restart, from the log and from a snapshot.
func TestRetentionByTime(t *testing.T) {
	fs := memfs.New()
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := participanttest.NewFakeClock(start)
	rt := participant.Retention{MaxLifetime: time.Minute, ClockSkew: 10 * time.Second}
	open := func() *filestore.Store {
		s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(1 << 20), Now: clock.Now, Retention: rt, SnapshotEvery: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	ctx := context.Background()
	soon := participant.PrepareInfo{Deadline: start.Add(5 * time.Second)}
	later := participant.PrepareInfo{Deadline: start.Add(50 * time.Second)}
	for _, c := range []struct {
		id   concord.TxID
		info participant.PrepareInfo
	}{{"a", soon}, {"b", later}} {
		if r, err := s.Prepare(ctx, c.id, takePayload(1), c.info); err != nil || r.Vote != concord.VoteYes {
			t.Fatalf("Prepare(%s) = %+v, %v", c.id, r, err)
		}
		if err := s.Commit(ctx, c.id); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Abort(ctx, "never-seen"); err != nil { // remembered until start + 1m + 10s + 10s
		t.Fatal(err)
	}
	for i := range 3000 { // many decisions, all with the later deadline
		id := concord.TxID(fmt.Sprintf("x%d", i))
		if r, err := s.Prepare(ctx, id, takePayload(1), later); err != nil || r.Vote != concord.VoteYes {
			t.Fatalf("Prepare(%s) = %+v, %v", id, r, err)
		}
		if err := s.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	remembered := func(s *filestore.Store, want int) {
		t.Helper()
		if n, _ := s.Remembered(ctx, ""); n != want {
			t.Fatalf("at %v the store remembers %d transactions, want %d", clock.Now().Sub(start), n, want)
		}
	}
	remembered(s, 3003)
	clock.Advance(15 * time.Second) // exactly a's deadline + skew: kept
	remembered(s, 3003)
	clock.Advance(time.Second)
	remembered(s, 3002)
	if err := s.Commit(ctx, "a"); !errors.Is(err, participant.ErrUnknownTx) {
		t.Errorf("commit of forgotten a = %v, want ErrUnknownTx", err)
	}
	if err := s.Commit(ctx, "b"); err != nil {
		t.Errorf("commit of remembered b = %v", err)
	}
	s.Close()
	s = open() // from the log
	remembered(s, 3002)
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open() // from the snapshot
	defer s.Close()
	remembered(s, 3002)
	if st := s.Stats(); st.Replayed != 0 {
		t.Fatalf("replayed %d records after a snapshot", st.Replayed)
	}
	if err := s.Abort(ctx, "b"); !errors.Is(err, participant.ErrAlreadyDecided) {
		t.Errorf("abort of committed b after restarts = %v, want ErrAlreadyDecided", err)
	}
	if r, err := s.Prepare(ctx, "never-seen", takePayload(1), later); err != nil || r.Vote != concord.VoteNo {
		t.Errorf("late prepare of the one aborted before prepare = %+v, %v; want no", r, err)
	}
	clock.Advance(50*time.Second - 16*time.Second + 10*time.Second + time.Second) // past later's deadline + skew
	remembered(s, 1)
	clock.Advance(time.Minute)
	remembered(s, 0)
}

// TestGroupCommit: concurrent prepares on the real file system share
// fsyncs.
func TestGroupCommit(t *testing.T) {
	s, err := filestore.Open(filestore.Options{Dir: t.TempDir(), FS: wal.OSFS{}, Machine: newCounter(1 << 20)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const n = 256
	before := s.Stats().Log.Syncs
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if r, err := s.Prepare(context.Background(), concord.TxID(fmt.Sprintf("g%d", i)), takePayload(1), participant.PrepareInfo{}); err != nil || r.Vote != concord.VoteYes {
				t.Errorf("prepare: %+v %v", r, err)
			}
		}()
	}
	wg.Wait()
	syncs := s.Stats().Log.Syncs - before
	t.Logf("%d prepares, %d fsyncs (%.2f per prepare)", n, syncs, float64(syncs)/n)
	if float64(syncs)/n > 0.5 {
		t.Fatalf("%d fsyncs for %d concurrent prepares: group commit is not sharing them", syncs, n)
	}
}

func TestPayloadTooLargeVotesNo(t *testing.T) {
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: memfs.New(), Machine: newCounter(5), MaxPayload: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r, err := s.Prepare(context.Background(), "big", json.RawMessage(`{"take":1,"pad":"`+strings.Repeat("x", 64)+`"}`), participant.PrepareInfo{})
	if err != nil || r.Vote != concord.VoteNo || !strings.Contains(r.Reason, "limit") {
		t.Fatalf("prepare of a large payload = %+v, %v; want a no vote naming the limit", r, err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, o := range []filestore.Options{
		{Machine: newCounter(1)},
		{Dir: "/d"},
		{Dir: "/d", Machine: newCounter(1), Retention: participant.Retention{ClockSkew: -1}},
	} {
		o.FS = memfs.New()
		if _, err := filestore.Open(o); !errors.Is(err, filestore.ErrBadOptions) {
			t.Errorf("Open(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
}

// TestStateInsideView: State may be called from inside View while other
// calls wait to change the store (a read lock taken twice would deadlock
// behind a waiting writer).
func TestStateInsideView(t *testing.T) {
	s := openMem(t, memfs.New(), newCounter(1<<20), 1000)
	defer s.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s.Prepare(context.Background(), concord.TxID(fmt.Sprintf("v%d-%d", w, i)), takePayload(1), participant.PrepareInfo{})
			}
		}()
	}
	for i := range 2000 {
		s.View(func() { s.State(concord.TxID(fmt.Sprintf("v0-%d", i))) })
	}
	close(stop)
	wg.Wait()
}

// TestSnapshotWriteFailureKeepsStoreWorking: a snapshot that cannot be
// written (here: its file cannot be created) is an error for that snapshot
// only; the log is intact and the store goes on.
func TestSnapshotWriteFailureKeepsStoreWorking(t *testing.T) {
	fs := memfs.New()
	c := newCounter(100)
	s := openMem(t, fs, c, 1000)
	prepare(t, s, "a", 1)
	fs.FailNth(memfs.OpCreate, 1, errors.New("injected ENOSPC"))
	if err := s.Snapshot(); err == nil {
		t.Fatal("snapshot succeeded although its file could not be created")
	}
	if err := s.Commit(context.Background(), "a"); err != nil {
		t.Fatalf("commit after a failed snapshot = %v", err)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatalf("second snapshot = %v", err)
	}
	s.Close()
	fs.Crash()
	s2 := openMem(t, fs, newCounter(100), 1000)
	defer s2.Close()
	if st, _ := s2.State("a"); st != filestore.StateCommitted {
		t.Fatalf("a is %s after reopen, want committed", st)
	}
}

// TestPreallocateReachesTheLog: Options.Preallocate is the zeros the log
// writes ahead of its records (Stats().Log.Preallocated), and negative
// turns them off.
func TestPreallocateReachesTheLog(t *testing.T) {
	for _, tc := range []struct {
		prealloc, want int64
	}{{0, wal.DefaultPreallocate}, {8 << 10, 8 << 10}, {-1, 0}} {
		fs := memfs.New()
		s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(10), Preallocate: tc.prealloc})
		if err != nil {
			t.Fatal(err)
		}
		prepare(t, s, "a", 1)
		if got := s.Stats().Log.Preallocated; got != tc.want {
			t.Errorf("Preallocate %d: the log wrote %d bytes of zeros ahead, want %d", tc.prealloc, got, tc.want)
		}
		s.Close()
	}
}

// TestReopenAfterAbortOfForgottenCommit: a committed transaction forgotten
// by time, then aborted (a late ABORT, which the store records for an id it
// does not know), leaves a COMMIT and then an ABORT of one id in the log;
// the store must reopen from it, as the store that wrote them did, and not
// refuse it as corrupt. Found by internal/sim/prodsim.
func TestReopenAfterAbortOfForgottenCommit(t *testing.T) {
	fs := memfs.New()
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := participanttest.NewFakeClock(start)
	rt := participant.Retention{MaxLifetime: time.Minute, ClockSkew: 10 * time.Second}
	open := func() *filestore.Store {
		t.Helper()
		s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(1 << 20), Now: clock.Now, Retention: rt, SnapshotEvery: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	ctx := context.Background()
	info := participant.PrepareInfo{Deadline: start.Add(5 * time.Second)}
	if r, err := s.Prepare(ctx, "a", takePayload(1), info); err != nil || r.Vote != concord.VoteYes {
		t.Fatalf("Prepare(a) = %+v, %v", r, err)
	}
	if err := s.Commit(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute) // past a's deadline and the skew: forgotten
	if err := s.Abort(ctx, "a"); err != nil {
		t.Fatalf("abort of forgotten a = %v", err)
	}
	s.Close()
	s = open()
	s.Close()
}
