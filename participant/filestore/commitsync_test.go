package filestore_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal/memfs"
)

func openDelay(t *testing.T, fs *memfs.FS, c *counter, delay time.Duration) *filestore.Store {
	t.Helper()
	s, err := filestore.Open(filestore.Options{Dir: "/data", FS: fs, Machine: c, CommitSyncDelay: delay})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// commitAsync runs Commit in a goroutine; its result arrives on the channel.
func commitAsync(s *filestore.Store, id concord.TxID) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- s.Commit(context.Background(), id) }()
	return ch
}

// checkCommittedAfterCrash crashes the file system (unsynced writes are
// lost) and reopens: a commit that returned must still be there.
func checkCommittedAfterCrash(t *testing.T, fs *memfs.FS, s *filestore.Store, id concord.TxID) {
	t.Helper()
	fs.Crash()
	s.Close()
	s2 := openDelay(t, fs, newCounter(10), -1)
	defer s2.Close()
	if st, _ := s2.State(id); st != filestore.StateCommitted {
		t.Fatalf("%s is %s after a crash, but its Commit had returned", id, st)
	}
}

// A COMMIT waits for the next prepare's sync and shares it: one fsync for
// both, and Commit returns only after it.
func TestCommitSharesTheNextSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		s := openDelay(t, fs, newCounter(10), time.Hour)
		prepare(t, s, "a", 1)
		before := s.Stats().Log.Syncs
		done := commitAsync(s, "a")
		synctest.Wait()
		select {
		case err := <-done:
			t.Fatalf("Commit returned (%v) before its record was synced", err)
		default:
		}
		if got := s.Stats().Log.Syncs; got != before {
			t.Fatalf("Commit synced at once (%d syncs, %d before)", got, before)
		}
		prepare(t, s, "b", 1) // its sync covers the COMMIT record written before it
		synctest.Wait()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("Commit still waits after a later sync covered its record")
		}
		if got := s.Stats().Log.Syncs - before; got != 1 {
			t.Fatalf("%d syncs for a commit and a prepare, want 1 shared", got)
		}
		checkCommittedAfterCrash(t, fs, s, "a")
	})
}

// With nothing else to sync, Commit syncs by itself once the delay is up.
func TestCommitSyncsAfterTheDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		const delay = 3 * time.Millisecond
		s := openDelay(t, fs, newCounter(10), delay)
		prepare(t, s, "a", 1)
		before := s.Stats().Log.Syncs
		start := time.Now()
		if err := <-commitAsync(s, "a"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != delay {
			t.Fatalf("Commit returned after %v, want the delay %v", waited, delay)
		}
		if got := s.Stats().Log.Syncs - before; got != 1 {
			t.Fatalf("%d syncs, want 1", got)
		}
		checkCommittedAfterCrash(t, fs, s, "a")
	})
}

// A negative delay syncs at once.
func TestCommitSyncDelayOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		s := openDelay(t, fs, newCounter(10), -1)
		prepare(t, s, "a", 1)
		start := time.Now()
		if err := s.Commit(context.Background(), "a"); err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 0 {
			t.Fatalf("Commit waited %v with the delay off", waited)
		}
		checkCommittedAfterCrash(t, fs, s, "a")
	})
}
