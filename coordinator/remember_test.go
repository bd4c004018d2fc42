package coordinator

import (
	"context"
	"errors"
	"fmt"
	"github.com/cockroachdb/pebble/vfs"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// setClock is a clock the test sets; nothing here waits on it.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *setClock) set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

func (c *setClock) AfterFunc(time.Duration, func()) Timer { return stopped{} }

type stopped struct{}

func (stopped) Stop() bool { return false }

func finished(id concord.TxID, at time.Time) *finishedTx {
	return &finishedTx{status: tpc.Status{TxID: id, Outcome: concord.OutcomeCommitted, Done: true,
		Branches: []tpc.BranchStatus{{Participant: "flights", Vote: concord.VoteYes, Acknowledged: true, Reason: "ok"}}},
		digest: digest{7}, owner: "alice", finished: at.UnixNano()}
}

// Entries expire by finish time: a look-up past the window finds nothing
// at once, and the next write deletes them from the store, oldest first,
// a bounded number at a time, without touching the rest; what is left
// survives a reopen.
func TestRememberedExpiry(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "remembered")
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := &setClock{now: t0}
	b, oldest, err := openPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRemembered(b, oldest, 24*time.Hour, clock, t.Logf)
	for i, id := range []concord.TxID{"a", "b", "c"} {
		r.add(finished(id, t0.Add(time.Duration(i)*time.Hour)))
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	clock.set(t0.Add(24*time.Hour + 30*time.Minute))
	if f, err := r.get("a"); f != nil || err != nil {
		t.Fatalf("a past the window: %+v %v", f, err)
	}
	if f, err := r.get("b"); f == nil || err != nil || !reflect.DeepEqual(f, finished("b", t0.Add(time.Hour))) {
		t.Fatalf("b inside the window: %+v %v", f, err)
	}
	if f, _ := b.get("a"); f == nil {
		t.Fatal("a left the store before a write")
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if f, _ := b.get("a"); f != nil {
		t.Fatal("a still in the store after a write past its window")
	}
	if want := t0.Add(time.Hour).UnixNano(); r.oldest != want {
		t.Fatalf("oldest %d, want b's %d", r.oldest, want)
	}

	// Many expired at once: each write deletes a bounded number.
	for i := range 5000 {
		r.add(finished(concord.TxID(fmt.Sprintf("old-%d", i)), t0.Add(90*time.Minute)))
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	clock.set(t0.Add(26 * time.Hour))
	if err := r.flush(); err != nil { // nothing new: expiry alone
		t.Fatal(err)
	}
	left := 0
	for i := range 5000 {
		if f, _ := b.get(concord.TxID(fmt.Sprintf("old-%d", i))); f != nil {
			left++
		}
	}
	// The limit is 4096 for a write with nothing new; b, older, went first.
	if f, _ := b.get("b"); f != nil || left != 5000-4095 {
		t.Fatalf("%d of 5000 expired entries left after one write (b: %v), want %d", left, f, 5000-4095)
	}
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	if f, _ := b.get("old-4999"); f != nil {
		t.Fatal("expired entries left after a second write")
	}
	if err := r.close(false); err != nil {
		t.Fatal(err)
	}
	if _, err := r.get("c"); !errors.Is(err, errRememberedClosed) {
		t.Fatalf("a look-up after close: %v", err)
	}

	b, oldest, err = openPebble(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	if want := t0.Add(2 * time.Hour).UnixNano(); oldest != want {
		t.Fatalf("reopened: oldest %d, want c's %d", oldest, want)
	}
	if f, _ := b.get("c"); f == nil || f.owner != "alice" || f.digest != (digest{7}) {
		t.Fatalf("c after a reopen: %+v", f)
	}
}

// An entry decodes to what was encoded; a damaged one is an error naming
// the id, never a panic.
func TestFinishedEncoding(t *testing.T) {
	f := finished("trip-1", time.Unix(0, 12345))
	f.legacy = true
	f.status.Reason = "why"
	f.status.Branches = append(f.status.Branches, tpc.BranchStatus{Participant: "hotels", Vote: concord.VoteReadOnly})
	b := encodeFinished(f)
	got, err := decodeFinished("trip-1", b)
	if err != nil || !reflect.DeepEqual(got, f) {
		t.Fatalf("round trip: %+v %v, want %+v", got, err, f)
	}
	for n := range len(b) {
		if _, err := decodeFinished("trip-1", b[:n]); !errors.Is(err, ErrBadLogEntry) {
			t.Fatalf("%d of %d bytes: %v", n, len(b), err)
		}
	}
}

// failingBackend refuses every write.
type failingBackend struct{ memBackend }

func (*failingBackend) write([]*finishedTx, int64, int) (int64, error) {
	return 0, errors.New("disk full")
}

// The log is not compacted past a finished transaction before the
// remembered set holds it: when the set cannot be written, compaction
// deletes nothing (and says why), and once it can, compaction goes on.
func TestCompactionWaitsForTheRememberedSet(t *testing.T) {
	c, err := New(Options{Dir: "/c", FS: memfs.New(), SegmentSize: 2048, Transport: &fakeTransport{},
		Participants:    map[string]string{"flights": "http://127.0.0.1:1", "hotels": "http://127.0.0.1:2"},
		CompactInterval: time.Hour, DecisionDelay: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	good := c.table.store.backend
	c.table.store.backend = &failingBackend{}
	for i := range 100 {
		r, err := c.Submit(context.Background(), wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("t-%d", i)),
			Branches: []wire.Branch{{Participant: "flights"}, {Participant: "hotels"}}})
		if err != nil || r.Outcome != concord.OutcomeCommitted {
			t.Fatalf("%+v %v", r, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Live > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the acknowledgements never came")
		}
		time.Sleep(time.Millisecond) // acknowledgements arrive on the senders' goroutines
	}
	first := c.log.FirstSeq()
	if err := c.Compact(); err == nil || c.log.FirstSeq() != first {
		t.Fatalf("compaction with the remembered set failing: %v, first record %d -> %d", err, first, c.log.FirstSeq())
	}
	c.table.store.backend = good
	if err := c.Compact(); err != nil || c.log.FirstSeq() == first {
		t.Fatalf("compaction once it can be written: %v, first record still %d", err, first)
	}
	for i := range 100 {
		if f, _ := good.get(concord.TxID(fmt.Sprintf("t-%d", i))); f == nil {
			t.Fatalf("t-%d is not in the remembered set after compaction", i)
		}
	}
}

// A transaction recovered from a request record written before the
// canonical digest (version 1) is matched with the digest it holds: an
// identical resubmission is answered as the first time, not 409.
func TestLegacyDigestRecovered(t *testing.T) {
	fs := memfs.New()
	l, err := wal.Open(wal.Options{Dir: "/c", FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	req := wire.SubmitRequest{ID: "old-1", TimeoutMS: 2000, Branches: []wire.Branch{
		{Participant: "flights", Payload: []byte(`{"sku":"F-1","quantity":1}`)}, {Participant: "hotels"}}}
	parts := []string{"flights", "hotels"}
	votes := []concord.Vote{concord.VoteYes, concord.VoteYes}
	recs := []tpc.Record{
		{Type: tpc.RecBegin, TxID: "old-1", Participants: parts},
		{Type: tpc.RecCommit, TxID: "old-1", Participants: parts, Votes: votes, Outcome: concord.OutcomeCommitted},
		{Type: tpc.RecEnd, TxID: "old-1", Outcome: concord.OutcomeCommitted},
	}
	if _, err := l.Append(entryRequest, encodeRequest("old-1", requestDigestV1(&req), "", true)); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		b, err := r.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Append(uint8(r.Type), b); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	prepared := 0
	tr := &fakeTransport{prepare: func(string, wire.PrepareRequest) (wire.PrepareResponse, error) {
		prepared++
		return wire.PrepareResponse{}, errors.New("nothing may be prepared")
	}}
	c, err := New(Options{Dir: "/c", FS: fs, Transport: tr, CompactInterval: time.Hour,
		Participants: map[string]string{"flights": "http://127.0.0.1:1", "hotels": "http://127.0.0.1:2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Submit(context.Background(), req)
	if err != nil || r.Outcome != concord.OutcomeCommitted || prepared != 0 {
		t.Fatalf("identical resubmission of a transaction with a version 1 digest: %+v %v, %d PREPAREs", r, err, prepared)
	}
	other := req
	other.Branches = other.Branches[:1]
	if _, err := c.Submit(context.Background(), other); !errors.Is(err, ErrConflict) {
		t.Fatalf("a different request: %v, want ErrConflict", err)
	}
}

// A power loss right after the remembered set is first opened keeps what
// was written to it: its directory's entry in the parent is synced too
// (Pebble's strict in-memory file system loses an unsynced entry).
func TestRememberedSurvivesPowerLossAfterCreate(t *testing.T) {
	fs := vfs.NewStrictMem()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	clock := &setClock{now: t0}
	b, oldest, err := openPebble("/remembered", fs)
	if err != nil {
		t.Fatal(err)
	}
	r := newRemembered(b, oldest, 24*time.Hour, clock, t.Logf)
	r.add(finished("a", t0))
	if err := r.flush(); err != nil {
		t.Fatal(err)
	}
	fs.SetIgnoreSyncs(true)
	r.close(true)
	fs.ResetToSyncedState()
	fs.SetIgnoreSyncs(false)
	b, oldest, err = openPebble("/remembered", fs)
	if err != nil {
		t.Fatal(err)
	}
	r = newRemembered(b, oldest, 24*time.Hour, clock, t.Logf)
	defer r.close(true)
	if f, err := r.get("a"); f == nil || err != nil {
		t.Fatalf("after a power loss, a flushed entry is gone: %v, %v", f, err)
	}
}
