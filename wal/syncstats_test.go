package wal_test

import (
	"testing"
	"time"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// slowFS is a wal.FS whose files take at least delay to sync, as a slow
// disk does.
type slowFS struct {
	wal.FS
	delay time.Duration
}

type slowFile struct {
	wal.File
	delay time.Duration
}

func (f slowFile) Sync() error {
	time.Sleep(f.delay) // the slow disk itself, not a wait for anything
	return f.File.Sync()
}

func (s slowFS) Create(name string) (wal.File, error) {
	f, err := s.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return slowFile{f, s.delay}, nil
}

func (s slowFS) OpenFile(name string, writable bool) (wal.File, error) {
	f, err := s.FS.OpenFile(name, writable)
	if err != nil {
		return nil, err
	}
	return slowFile{f, s.delay}, nil
}

// bucket is the index of the first SyncBuckets bound at or above d.
func bucket(t *testing.T, d time.Duration) int {
	for i, b := range wal.SyncBuckets {
		if d <= b {
			return i
		}
	}
	t.Fatalf("no bucket holds %v", d)
	return -1
}

// Every fsync lands in the latency histogram: fsyncs of 30ms or more are
// counted in no bucket below 30ms, and all of them within a second.
func TestSyncLatencyHistogram(t *testing.T) {
	const delay = 30 * time.Millisecond
	l, err := wal.Open(wal.Options{Dir: "/w", FS: slowFS{memfs.New(), delay}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 3; i++ {
		if _, err := l.Append(1, []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	st := l.Stats()
	if st.Syncs < 3 {
		t.Fatalf("%d syncs for 3 durable appends", st.Syncs)
	}
	if st.SyncTime < time.Duration(st.Syncs)*delay {
		t.Errorf("sync time %v for %d syncs of at least %v", st.SyncTime, st.Syncs, delay)
	}
	for i, n := range st.SyncsWithin {
		if i > 0 && n < st.SyncsWithin[i-1] {
			t.Errorf("buckets not cumulative: %v", st.SyncsWithin)
		}
		if n > st.Syncs {
			t.Errorf("bucket %v holds %d of %d syncs", wal.SyncBuckets[i], n, st.Syncs)
		}
	}
	if n := st.SyncsWithin[bucket(t, 25*time.Millisecond)]; n != 0 {
		t.Errorf("%d syncs of at least %v counted within 25ms: %v", n, delay, st.SyncsWithin)
	}
	// Under a loaded machine a 30ms sleep may take longer, but not a second.
	if n := st.SyncsWithin[len(st.SyncsWithin)-1]; n != st.Syncs {
		t.Errorf("%d of %d syncs within %v: %v", n, st.Syncs, wal.SyncBuckets[len(wal.SyncBuckets)-1], st.SyncsWithin)
	}
}
