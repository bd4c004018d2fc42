package filestore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal/memfs"
)

// TestLowerMaxPayloadKeepsPrepared: a prepared transaction whose payload is
// above a MaxPayload lowered across a restart is still prepared after it
// (its record is read, not taken for damage); new payloads above the limit
// are refused.
func TestLowerMaxPayloadKeepsPrepared(t *testing.T) {
	fs := memfs.New()
	big := json.RawMessage(fmt.Sprintf(`{"take":1,"pad":%q}`, strings.Repeat("x", 8<<10)))
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(10)})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Prepare(context.Background(), "big", big, participant.PrepareInfo{}); err != nil || r.Vote != concord.VoteYes {
		t.Fatalf("prepare = %v, %v", r, err)
	}
	fs.Crash() // the prepare, the last record, was synced
	s.Close()
	for range 2 {
		s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(10), MaxPayload: 1024})
		if err != nil {
			t.Fatalf("open with a lower MaxPayload: %v", err)
		}
		ids, err := s.Recover(context.Background())
		if err != nil || len(ids) != 1 || ids[0].ID != "big" {
			t.Fatalf("prepared after the restart: %v, %v; want [big]", ids, err)
		}
		if r, err := s.Prepare(context.Background(), "big2", big, participant.PrepareInfo{}); err != nil || r.Vote != concord.VoteNo {
			t.Fatalf("prepare above the new limit = %v, %v; want a no vote", r, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLogEndingBeforeSnapshotRefuses: a snapshot covers records up to X,
// synced before it was written; a log that ends before X after a restart
// lost synced records. Open refuses, rather than reuse sequence numbers
// the snapshot covers.
func TestLogEndingBeforeSnapshotRefuses(t *testing.T) {
	fs := memfs.New()
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(100), SegmentSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		prepare(t, s, concord.TxID(fmt.Sprintf("t%d", i)), 1)
	}
	if err := s.Snapshot(); err != nil {
		t.Fatal(err)
	}
	snapSeq := s.Stats().SnapshotSeq
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// The last segment loses its records after the first (a truncation
	// the log itself cannot see: no mark is left after the cut).
	names, _ := fs.ReadDir("/data/wal")
	var seg string
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			seg = "/data/wal/" + n
		}
	}
	b, _ := fs.ReadFile(seg)
	cut := strings.Index(string(b), "t1")
	if cut < 0 || snapSeq < 2 {
		t.Fatalf("test setup: record of t1 at %d, snapshot at %d", cut, snapSeq)
	}
	if err := fs.WriteFile(seg, b[:cut]); err != nil {
		t.Fatal(err)
	}
	_, err = filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: newCounter(100)})
	if !errors.Is(err, filestore.ErrCorrupt) || !strings.Contains(err.Error(), "snapshot") {
		t.Fatalf("open = %v, want ErrCorrupt about the snapshot", err)
	}
}
