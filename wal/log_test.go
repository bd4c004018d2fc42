package wal_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

func TestAppendReplayReopen(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 512) // small segments: many rolls
	appendN(t, l, 1, 100)
	checkRecords(t, replayAll(t, l), 100)
	if got := l.LastSeq(); got != 100 {
		t.Fatalf("LastSeq = %d, want 100", got)
	}
	if got := l.FirstSeq(); got != 1 {
		t.Fatalf("FirstSeq = %d, want 1", got)
	}
	st := l.Stats()
	if st.Appends != 100 || st.Segments < 5 || st.Syncs < 1 {
		t.Fatalf("stats %+v: want 100 appends, several segments, syncs", st)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// Every record was acknowledged as durable: a crash loses none.
	m.Crash()
	l = openMem(t, m, 512)
	checkRecords(t, replayAll(t, l), 100)
	appendN(t, l, 101, 150)
	checkRecords(t, replayAll(t, l), 150)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestReplayFrom(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 300)
	defer l.Close()
	appendN(t, l, 1, 60)
	for _, from := range []uint64{0, 1, 2, 17, 59, 60, 61, 1000} {
		var got []uint64
		if err := l.Replay(from, func(r wal.Record) error {
			got = append(got, r.Seq)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		first := max(from, 1)
		want := 0
		if first <= 60 {
			want = int(60 - first + 1)
		}
		if len(got) != want || (want > 0 && got[0] != first) {
			t.Fatalf("Replay(%d) gave %d records starting %v, want %d from %d", from, len(got), got[:min(len(got), 1)], want, first)
		}
		for i := 1; i < len(got); i++ {
			if got[i] != got[i-1]+1 {
				t.Fatalf("Replay(%d) out of order: %v", from, got)
			}
		}
	}
	stop := errors.New("stop")
	n := 0
	err := l.Replay(0, func(wal.Record) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Fatalf("Replay did not stop at fn's error: %v after %d calls", err, n)
	}
}

func TestAppendBatchAndAsync(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	first, err := l.AppendBatch([]wal.Entry{{Type: 1, Payload: payload(1)}, {Type: 2, Payload: payload(2)}}, true)
	if err != nil || first != 1 {
		t.Fatalf("AppendBatch = %d, %v; want 1, nil", first, err)
	}
	seq, err := l.AppendAsync(3, payload(3))
	if err != nil || seq != 3 {
		t.Fatalf("AppendAsync = %d, %v; want 3, nil", seq, err)
	}
	// An async record is visible to Replay at once.
	checkRecords(t, replayAll(t, l), 3)
	// An async record becomes durable with the next synced append.
	if _, err := l.AppendBatch([]wal.Entry{{Type: 4, Payload: payload(4)}}, false); err != nil {
		t.Fatal(err)
	}
	if seq, err := l.Append(5, payload(5)); err != nil || seq != 5 {
		t.Fatalf("Append = %d, %v", seq, err)
	}
	if got := l.DurableSeq(); got != 5 {
		t.Fatalf("DurableSeq = %d, want 5", got)
	}
	l = crashReopen(t, m, l)
	checkRecords(t, replayAll(t, l), 5)
	// Async then Sync: durable.
	if _, err := l.AppendAsync(6, payload(6)); err != nil {
		t.Fatal(err)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	l = crashReopen(t, m, l)
	checkRecords(t, replayAll(t, l), 6)
	// Async then Close: durable.
	if _, err := l.AppendAsync(0, payload(7)); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	l = openMem(t, m, 0)
	checkRecords(t, replayAll(t, l), 7)
	l.Close()
}

func TestAsyncWithoutSyncIsLostOnCrash(t *testing.T) {
	// The memfs crash model is what the crash tests rely on: show that it
	// does drop what was never synced.
	m := memfs.New()
	l := openMem(t, m, 0)
	appendN(t, l, 1, 3)
	if _, err := l.AppendAsync(4, payload(4)); err != nil {
		t.Fatal(err)
	}
	checkRecords(t, replayAll(t, l), 4) // written, not synced
	l = crashReopen(t, m, l)
	defer l.Close()
	checkRecords(t, replayAll(t, l), 3)
}

func TestClosedLog(t *testing.T) {
	m := memfs.New()
	l := openMem(t, m, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(1, nil); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if _, err := l.AppendAsync(1, nil); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("AppendAsync after Close: %v, want ErrClosed", err)
	}
	if err := l.Sync(); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Sync after Close: %v, want ErrClosed", err)
	}
	if err := l.Replay(0, func(wal.Record) error { return nil }); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Replay after Close: %v, want ErrClosed", err)
	}
	if err := l.Compact(10); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Compact after Close: %v, want ErrClosed", err)
	}
	if err := l.Close(); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
}

func TestBadOptions(t *testing.T) {
	for _, tc := range []struct {
		opts wal.Options
		want string
	}{
		{wal.Options{}, "Dir"},
		{wal.Options{Dir: "/x", SegmentSize: -1}, "SegmentSize"},
		{wal.Options{Dir: "/x", MaxRecordSize: -5}, "MaxRecordSize"},
		{wal.Options{Dir: "/x", MaxRecordSize: 2 << 30}, "MaxRecordSize"},
		{wal.Options{Dir: "/x", Preallocate: 1<<30 + 1}, "Preallocate"},
	} {
		tc.opts.FS = memfs.New()
		_, err := wal.Open(tc.opts)
		if !errors.Is(err, wal.ErrInvalidOptions) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%+v) = %v, want ErrInvalidOptions naming %s", tc.opts, err, tc.want)
		}
		_, err = wal.Inspect(tc.opts, 0, func(wal.Record) error { return nil })
		if !errors.Is(err, wal.ErrInvalidOptions) {
			t.Errorf("Inspect(%+v) = %v, want ErrInvalidOptions", tc.opts, err)
		}
	}
}

func TestRecordTooLarge(t *testing.T) {
	m := memfs.New()
	l, err := wal.Open(wal.Options{Dir: testDir, FS: m, MaxRecordSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(1, make([]byte, 100)); err != nil {
		t.Fatalf("append of exactly the maximum: %v", err)
	}
	for name, f := range map[string]func() error{
		"Append":      func() error { _, err := l.Append(1, make([]byte, 101)); return err },
		"AppendAsync": func() error { _, err := l.AppendAsync(1, make([]byte, 101)); return err },
		"AppendBatch": func() error {
			_, err := l.AppendBatch([]wal.Entry{{Payload: nil}, {Payload: make([]byte, 101)}}, true)
			return err
		},
	} {
		if err := f(); !errors.Is(err, wal.ErrRecordTooLarge) {
			t.Errorf("%s of 101 bytes: %v, want ErrRecordTooLarge", name, err)
		}
	}
	// Nothing of the rejected appends reached the log.
	if recs := replayAll(t, l); len(recs) != 1 || l.LastSeq() != 1 {
		t.Fatalf("log holds %d records (LastSeq %d) after rejected appends, want 1", len(recs), l.LastSeq())
	}
}
