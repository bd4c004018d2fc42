package declogtest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/wal"
)

// Impl is an implementation under test.
type Impl struct {
	// New returns a fresh, empty store of one log. Everything is cleaned up
	// with t.Cleanup.
	New func(t *testing.T) Store
	// MaxRecordSize is the largest payload the logs New makes accept.
	MaxRecordSize int
	// CompactUnit is at most the number of 100-byte records, each appended
	// with its own Append, after which Compact of all but the last can free
	// something (a segment, a chunk). New must configure its logs so.
	CompactUnit int
}

// Store is one log's storage.
type Store struct {
	// Open opens the log: each call opens the same log (after the previous
	// one is closed), so that a test can close it and open it again.
	Open func() (declog.Log, error)
	// Crash, if not nil, ends the open log as a crash of its process
	// would: whatever was not durable may be lost, and the log object is
	// not used again (not even closed). The next Open opens what
	// survived. nil skips the test.
	Crash func(t *testing.T)
	// Poison, if not nil, makes the next write of the open log fail as the
	// storage would on a fault that leaves the log unusable (a failed
	// fsync). nil skips the test.
	Poison func(t *testing.T)
	// Fence, if not nil, takes the open log's ownership away as another
	// process's claim would. nil (a log that is never fenced) skips the
	// test.
	Fence func(t *testing.T)
}

// Run runs every conformance test as a subtest of t.
func Run(t *testing.T, impl Impl) {
	t.Run("Empty", func(t *testing.T) { testEmpty(t, impl) })
	t.Run("Order", func(t *testing.T) { testOrder(t, impl) })
	t.Run("ReplayFrom", func(t *testing.T) { testReplayFrom(t, impl) })
	t.Run("Reopen", func(t *testing.T) { testReopen(t, impl) })
	t.Run("AsyncThenSync", func(t *testing.T) { testAsyncThenSync(t, impl) })
	t.Run("GroupCommit", func(t *testing.T) { testGroupCommit(t, impl) })
	t.Run("Compact", func(t *testing.T) { testCompact(t, impl) })
	t.Run("CompactAll", func(t *testing.T) { testCompactAll(t, impl) })
	t.Run("TooLarge", func(t *testing.T) { testTooLarge(t, impl) })
	t.Run("Crash", func(t *testing.T) { testCrash(t, impl) })
	t.Run("Closed", func(t *testing.T) { testClosed(t, impl) })
	t.Run("Poisoned", func(t *testing.T) { testPoisoned(t, impl) })
	t.Run("Fenced", func(t *testing.T) { testFenced(t, impl) })
}

// payload is the deterministic payload of record seq, so that any record
// read back can be checked on its own.
func payload(seq uint64, size int) []byte {
	p := bytes.Repeat([]byte{byte(seq), byte(seq >> 8)}, size/2+1)[:size]
	copy(p, fmt.Sprintf("rec-%d:", seq))
	return p
}

func mustOpen(t *testing.T, s Store) declog.Log {
	t.Helper()
	l, err := s.Open()
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func closeLog(t *testing.T, l declog.Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// collect replays l from from and returns the records.
func collect(t *testing.T, l declog.Log, from uint64) []wal.Record {
	t.Helper()
	var recs []wal.Record
	if err := l.Replay(from, func(r wal.Record) error {
		recs = append(recs, r)
		return nil
	}); err != nil {
		t.Fatalf("Replay(%d): %v", from, err)
	}
	return recs
}

// checkRecords fails t unless recs are exactly the records first..last made
// by payload(seq, size) with type byte(seq).
func checkRecords(t *testing.T, recs []wal.Record, first, last uint64, size int) {
	t.Helper()
	if want := int(last - first + 1); last+1 == first && len(recs) == 0 {
		return
	} else if len(recs) != want {
		t.Fatalf("replayed %d records, want %d (%d..%d)", len(recs), want, first, last)
	}
	for i, r := range recs {
		seq := first + uint64(i)
		if r.Seq != seq {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, seq)
		}
		if r.Type != byte(seq) || !bytes.Equal(r.Payload, payload(seq, size)) {
			t.Fatalf("record %d: type %d payload %q, not what was appended", seq, r.Type, r.Payload)
		}
	}
}

func appendN(t *testing.T, l declog.Log, from, n uint64, size int) {
	t.Helper()
	for seq := from; seq < from+n; seq++ {
		got, err := l.Append(byte(seq), payload(seq, size))
		if err != nil {
			t.Fatalf("Append %d: %v", seq, err)
		}
		if got != seq {
			t.Fatalf("Append returned seq %d, want %d", got, seq)
		}
	}
}

func testEmpty(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	defer closeLog(t, l)
	if f, last := l.FirstSeq(), l.LastSeq(); f != 1 || last != 0 {
		t.Fatalf("empty log: FirstSeq %d LastSeq %d, want 1 and 0", f, last)
	}
	if recs := collect(t, l, 0); len(recs) != 0 {
		t.Fatalf("empty log replayed %d records", len(recs))
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync of an empty log: %v", err)
	}
	if seq, err := l.AppendBatch(nil, true); err != nil || seq != 1 {
		t.Fatalf("empty AppendBatch: seq %d err %v, want 1 and nil", seq, err)
	}
}

func testOrder(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	defer closeLog(t, l)
	appendN(t, l, 1, 3, 10)
	entries := []wal.Entry{{Type: 4, Payload: payload(4, 10)}, {Type: 5, Payload: payload(5, 10)}, {Type: 6, Payload: payload(6, 10)}}
	if seq, err := l.AppendBatch(entries, true); err != nil || seq != 4 {
		t.Fatalf("AppendBatch: seq %d err %v, want 4", seq, err)
	}
	if seq, err := l.AppendAsync(7, payload(7, 10)); err != nil || seq != 7 {
		t.Fatalf("AppendAsync: seq %d err %v, want 7", seq, err)
	}
	if seq, err := l.AppendBatch([]wal.Entry{{Type: 8, Payload: payload(8, 10)}}, false); err != nil || seq != 8 {
		t.Fatalf("AppendBatch without sync: seq %d err %v, want 8", seq, err)
	}
	if got := l.LastSeq(); got != 8 {
		t.Fatalf("LastSeq %d, want 8", got)
	}
	// Replay includes records appended asynchronously before it.
	recs := collect(t, l, 0)
	checkRecords(t, recs, 1, 8, 10)
	// Payloads are fresh slices: changing one changes no other record.
	recs[0].Payload[0] ^= 0xff
	checkRecords(t, collect(t, l, 0), 1, 8, 10)
	// Zero-length payloads are records too.
	if seq, err := l.Append(9, nil); err != nil || seq != 9 {
		t.Fatalf("Append of an empty payload: seq %d err %v", seq, err)
	}
	last := collect(t, l, 9)
	if len(last) != 1 || last[0].Seq != 9 || last[0].Type != 9 || len(last[0].Payload) != 0 {
		t.Fatalf("empty record replayed as %+v", last)
	}
}

func testReplayFrom(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	defer closeLog(t, l)
	appendN(t, l, 1, 20, 30)
	for _, from := range []uint64{0, 1, 2, 10, 19, 20} {
		first := max(from, 1)
		checkRecords(t, collect(t, l, from), first, 20, 30)
	}
	if recs := collect(t, l, 21); len(recs) != 0 {
		t.Fatalf("Replay(21) of 20 records returned %d", len(recs))
	}
	// Replay stops at fn's first error and returns it.
	stop := errors.New("stop here")
	n := 0
	err := l.Replay(0, func(r wal.Record) error {
		n++
		if r.Seq == 5 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 5 {
		t.Fatalf("Replay with fn failing at 5: err %v after %d calls, want %v after 5", err, n, stop)
	}
	// fn may append.
	err = l.Replay(20, func(r wal.Record) error {
		_, err := l.Append(21, payload(21, 30))
		return err
	})
	if err != nil {
		t.Fatalf("Replay appending from fn: %v", err)
	}
	checkRecords(t, collect(t, l, 0), 1, 21, 30)
}

func testReopen(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	appendN(t, l, 1, 10, 50)
	if _, err := l.AppendBatch([]wal.Entry{{Type: 11, Payload: payload(11, 50)}, {Type: 12, Payload: payload(12, 50)}}, true); err != nil {
		t.Fatal(err)
	}
	closeLog(t, l)
	l = mustOpen(t, s)
	if f, last := l.FirstSeq(), l.LastSeq(); f != 1 || last != 12 {
		t.Fatalf("reopened: FirstSeq %d LastSeq %d, want 1 and 12", f, last)
	}
	checkRecords(t, collect(t, l, 0), 1, 12, 50)
	// Appends go on after the last record.
	appendN(t, l, 13, 3, 50)
	closeLog(t, l)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	checkRecords(t, collect(t, l, 0), 1, 15, 50)
}

func testAsyncThenSync(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	for seq := uint64(1); seq <= 50; seq++ {
		got, err := l.AppendAsync(byte(seq), payload(seq, 40))
		if err != nil || got != seq {
			t.Fatalf("AppendAsync %d: seq %d err %v", seq, got, err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := l.Sync(); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
	// Records appended asynchronously just before Close are made durable
	// by Close.
	for seq := uint64(51); seq <= 60; seq++ {
		if _, err := l.AppendAsync(byte(seq), payload(seq, 40)); err != nil {
			t.Fatal(err)
		}
	}
	closeLog(t, l)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	checkRecords(t, collect(t, l, 0), 1, 60, 40)
}

func testGroupCommit(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	const writers, each, size = 64, 25, 64
	var mu sync.Mutex
	got := map[uint64][]byte{} // seq -> payload acknowledged at it
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				p := []byte(fmt.Sprintf("writer %d record %d", w, i))
				var seq uint64
				var err error
				switch i % 3 {
				case 0:
					seq, err = l.Append(7, p)
				case 1:
					seq, err = l.AppendBatch([]wal.Entry{{Type: 7, Payload: p}}, true)
				default:
					if seq, err = l.AppendAsync(7, p); err == nil {
						err = l.Sync()
					}
				}
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				if _, dup := got[seq]; dup {
					mu.Unlock()
					errs <- fmt.Errorf("seq %d acknowledged twice", seq)
					return
				}
				got[seq] = p
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	closeLog(t, l)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	recs := collect(t, l, 0)
	if len(recs) != writers*each {
		t.Fatalf("replayed %d records, want %d", len(recs), writers*each)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || !bytes.Equal(r.Payload, got[r.Seq]) {
			t.Fatalf("record %d (seq %d) is %q, acknowledged %q", i+1, r.Seq, r.Payload, got[r.Seq])
		}
	}
	// Group commit: 64 appenders at once share syncs. Each waits for its
	// own record before the next, so at most 64 records are waiting at any
	// time, and one sync per record would mean no sharing at all.
	if st.Appends != writers*each || st.Syncs >= st.Appends {
		t.Fatalf("stats %+v: want %d appends sharing fewer syncs", st, writers*each)
	}
	t.Logf("%d records in %d syncs", st.Appends, st.Syncs)
}

func testCompact(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	n := uint64(3 * impl.CompactUnit)
	appendN(t, l, 1, n, 100)
	before := n - 5
	if err := l.Compact(before); err != nil {
		t.Fatalf("Compact(%d): %v", before, err)
	}
	first := l.FirstSeq()
	if first <= 1 || first > before {
		t.Fatalf("after Compact(%d) of %d records FirstSeq is %d: want it freed some, and none at or after %d", before, n, first, before)
	}
	checkRecords(t, collect(t, l, 0), first, n, 100)
	checkRecords(t, collect(t, l, before), before, n, 100)
	// Compact is idempotent, and never goes back.
	if err := l.Compact(before); err != nil {
		t.Fatal(err)
	}
	if err := l.Compact(2); err != nil {
		t.Fatal(err)
	}
	if got := l.FirstSeq(); got != first {
		t.Fatalf("FirstSeq moved from %d to %d on repeated compactions", first, got)
	}
	closeLog(t, l)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	if got := l.FirstSeq(); got != first || l.LastSeq() != n {
		t.Fatalf("reopened after Compact: FirstSeq %d LastSeq %d, want %d and %d", got, l.LastSeq(), first, n)
	}
	checkRecords(t, collect(t, l, 0), first, n, 100)
	appendN(t, l, n+1, 2, 100)
	checkRecords(t, collect(t, l, before), before, n+2, 100)
}

// testCompactAll compacts everything there is: the sequence numbers go on
// after the last record all the same, also after a reopen.
func testCompactAll(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	n := uint64(2 * impl.CompactUnit)
	appendN(t, l, 1, n, 100)
	if err := l.Compact(n + 1); err != nil {
		t.Fatalf("Compact(%d): %v", n+1, err)
	}
	if l.LastSeq() != n || l.FirstSeq() <= 1 {
		t.Fatalf("after Compact of all: FirstSeq %d LastSeq %d", l.FirstSeq(), l.LastSeq())
	}
	closeLog(t, l)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	if l.LastSeq() != n {
		t.Fatalf("reopened after Compact of all: LastSeq %d, want %d", l.LastSeq(), n)
	}
	appendN(t, l, n+1, 1, 100)
	recs := collect(t, l, n+1)
	checkRecords(t, recs, n+1, n+1, 100)
}

// testCrash: everything acknowledged as durable survives a crash, records
// appended asynchronously without a sync may or may not, and the log goes
// on after what survived.
func testCrash(t *testing.T, impl Impl) {
	s := impl.New(t)
	if s.Crash == nil {
		t.Skip("implementation has no crash hook")
	}
	l := mustOpen(t, s)
	appendN(t, l, 1, 5, 30)
	// Enough asynchronous bytes that they cannot all be written in the
	// moment before the crash unless Sync waited for them.
	size := min(4000, impl.MaxRecordSize)
	sizes := map[uint64]int{}
	for seq := uint64(1); seq <= 5; seq++ {
		sizes[seq] = 30
	}
	for seq := uint64(6); seq <= 105; seq++ {
		if _, err := l.AppendAsync(byte(seq), payload(seq, size)); err != nil {
			t.Fatal(err)
		}
		sizes[seq] = size
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	s.Crash(t)
	l = mustOpen(t, s)
	if got := l.LastSeq(); got != 105 {
		t.Fatalf("after a crash right after Sync the log ends at %d, want 105", got)
	}
	if _, err := l.AppendBatch([]wal.Entry{{Type: 106, Payload: payload(106, 30)}, {Type: 107, Payload: payload(107, 30)}}, true); err != nil {
		t.Fatal(err)
	}
	sizes[106], sizes[107], sizes[108] = 30, 30, 30
	if _, err := l.AppendAsync(108, payload(108, 30)); err != nil {
		t.Fatal(err)
	}
	s.Crash(t)
	l = mustOpen(t, s)
	defer closeLog(t, l)
	last := l.LastSeq()
	if last != 107 && last != 108 {
		t.Fatalf("after a crash the log ends at %d, want 107 (or 108)", last)
	}
	recs := collect(t, l, 0)
	if len(recs) != int(last) {
		t.Fatalf("after a crash %d records replayed, LastSeq %d", len(recs), last)
	}
	for i, r := range recs {
		seq := uint64(i + 1)
		if r.Seq != seq || r.Type != byte(seq) || !bytes.Equal(r.Payload, payload(seq, sizes[seq])) {
			t.Fatalf("after a crash record %d is seq %d type %d, not what was appended", seq, r.Seq, r.Type)
		}
	}
	appendN(t, l, last+1, 1, 30)
}

func testTooLarge(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	defer closeLog(t, l)
	big := make([]byte, impl.MaxRecordSize+1)
	if _, err := l.Append(1, big); !errors.Is(err, declog.ErrRecordTooLarge) {
		t.Fatalf("Append of %d bytes: %v, want ErrRecordTooLarge", len(big), err)
	}
	if _, err := l.AppendAsync(1, big); !errors.Is(err, declog.ErrRecordTooLarge) {
		t.Fatalf("AppendAsync of %d bytes: %v, want ErrRecordTooLarge", len(big), err)
	}
	if _, err := l.AppendBatch([]wal.Entry{{Type: 1}, {Type: 1, Payload: big}}, true); !errors.Is(err, declog.ErrRecordTooLarge) {
		t.Fatalf("AppendBatch with a record of %d bytes: %v, want ErrRecordTooLarge", len(big), err)
	}
	// Nothing of a refused batch is appended, and the log goes on.
	if seq, err := l.Append(1, payload(1, 10)); err != nil || seq != 1 {
		t.Fatalf("Append after refusals: seq %d err %v, want 1", seq, err)
	}
	if seq, err := l.Append(2, make([]byte, impl.MaxRecordSize)); err != nil || seq != 2 {
		t.Fatalf("Append of exactly MaxRecordSize: seq %d err %v", seq, err)
	}
}

// checkFinal fails t unless every writing call of l fails with want.
func checkFinal(t *testing.T, l declog.Log, want error) {
	t.Helper()
	if _, err := l.Append(1, []byte("x")); !errors.Is(err, want) {
		t.Errorf("Append: %v, want %v", err, want)
	}
	if _, err := l.AppendAsync(1, []byte("x")); !errors.Is(err, want) {
		t.Errorf("AppendAsync: %v, want %v", err, want)
	}
	if _, err := l.AppendBatch([]wal.Entry{{Type: 1}}, true); !errors.Is(err, want) {
		t.Errorf("AppendBatch: %v, want %v", err, want)
	}
	if _, err := l.AppendBatch([]wal.Entry{{Type: 1}}, false); !errors.Is(err, want) {
		t.Errorf("AppendBatch without sync: %v, want %v", err, want)
	}
	if err := l.Sync(); !errors.Is(err, want) {
		t.Errorf("Sync: %v, want %v", err, want)
	}
	if err := l.Compact(l.LastSeq()); !errors.Is(err, want) {
		t.Errorf("Compact: %v, want %v", err, want)
	}
}

func testClosed(t *testing.T, impl Impl) {
	s := impl.New(t)
	l := mustOpen(t, s)
	appendN(t, l, 1, 2, 10)
	closeLog(t, l)
	checkFinal(t, l, declog.ErrClosed)
	if err := l.Close(); !errors.Is(err, declog.ErrClosed) {
		t.Errorf("second Close: %v, want ErrClosed", err)
	}
	if l.LastSeq() != 2 {
		t.Errorf("LastSeq after Close: %d, want 2", l.LastSeq())
	}
}

func testPoisoned(t *testing.T, impl Impl) {
	s := impl.New(t)
	if s.Poison == nil {
		t.Skip("implementation has no fault hook")
	}
	l := mustOpen(t, s)
	appendN(t, l, 1, 3, 10)
	s.Poison(t)
	if _, err := l.Append(4, payload(4, 10)); err == nil {
		t.Fatal("Append succeeded through a write failure")
	}
	checkFinal(t, l, declog.ErrPoisoned)
	l.Close()
	// What was acknowledged before is there on reopening.
	l = mustOpen(t, s)
	defer closeLog(t, l)
	recs := collect(t, l, 0)
	if len(recs) < 3 {
		t.Fatalf("reopened after poisoning: %d records, want the 3 acknowledged", len(recs))
	}
	checkRecords(t, recs[:3], 1, 3, 10)
}

func testFenced(t *testing.T, impl Impl) {
	s := impl.New(t)
	if s.Fence == nil {
		t.Skip("implementation is never fenced")
	}
	l := mustOpen(t, s)
	defer l.Close()
	appendN(t, l, 1, 3, 10)
	s.Fence(t)
	if _, err := l.Append(4, payload(4, 10)); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Append after losing ownership: %v, want ErrFenced", err)
	}
	checkFinal(t, l, declog.ErrFenced)
	// And it stays so.
	if _, err := l.Append(4, payload(4, 10)); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("second Append after losing ownership: %v, want ErrFenced", err)
	}
}
