package filestore_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal/memfs"
)

// holdNextSync makes the next fsync of fs block until the returned
// function is called (once or more), as a slow disk would.
func holdNextSync(fs *memfs.FS) (release func()) {
	ch := make(chan struct{})
	armed := true
	fs.SetFault(func(op memfs.Op, _ string) error {
		if op == memfs.OpSync && armed {
			armed = false
			<-ch
		}
		return nil
	})
	return sync.OnceFunc(func() { close(ch) })
}

// crashAndExpect crashes fs (faults off), closes s, reopens the store and
// fails unless each transaction is in the state want gives it; why says
// what promised it.
func crashAndExpect(t *testing.T, fs *memfs.FS, s *filestore.Store, why string, want map[concord.TxID]filestore.TxState) {
	t.Helper()
	fs.SetFault(nil)
	fs.Crash()
	s.Close()
	s2 := openDelay(t, fs, newCounter(10), -1)
	defer s2.Close()
	for id, w := range want {
		if st, _ := s2.State(id); st != w {
			t.Fatalf("%s is %s after a crash, but %s", id, st, why)
		}
	}
}

// returnsAfterTheSync runs call, named what, in a goroutine with the next
// fsync of fs held, fails if it returns before the sync is released, and
// then releases it and waits for call to return. It runs in a synctest
// bubble.
func returnsAfterTheSync(t *testing.T, fs *memfs.FS, what string, call func()) {
	t.Helper()
	release := holdNextSync(fs)
	defer release() // on failure too: the bubble must not end with the sync held
	done := make(chan struct{})
	go func() {
		call()
		close(done)
	}()
	synctest.Wait()
	select {
	case <-done:
		t.Fatalf("%s returned before its records were synced", what)
	default:
	}
	release()
	<-done
}

// prepareBatchAsync runs PrepareBatch in a goroutine; the calls arrive on
// the channel when it returns.
func prepareBatchAsync(s *filestore.Store, ids ...concord.TxID) <-chan []participant.PrepareCall {
	calls := make([]participant.PrepareCall, len(ids))
	for i, id := range ids {
		calls[i] = participant.PrepareCall{ID: id, Payload: takePayload(1)}
	}
	ch := make(chan []participant.PrepareCall, 1)
	go func() {
		s.PrepareBatch(context.Background(), calls)
		ch <- calls
	}()
	return ch
}

// A batch's yes votes come back only once their PREPARED records are
// durable, and so does the yes vote on a duplicate whose first prepare is
// still waiting for its sync: the duplicate waits for that record.
func TestPrepareBatchVotesAfterTheSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		s := openDelay(t, fs, newCounter(10), -1)
		defer s.Close()
		release := holdNextSync(fs)
		defer release() // on failure too: the bubble must not end with the sync held
		first := prepareBatchAsync(s, "a", "b")
		synctest.Wait() // a and b are written, their sync held
		dup := prepareBatchAsync(s, "b")
		synctest.Wait()
		select {
		case <-first:
			t.Fatal("PrepareBatch voted before its records were synced")
		case <-dup:
			t.Fatal("PrepareBatch voted yes on a duplicate before its first prepare's record was synced")
		default:
		}
		release()
		for _, calls := range [][]participant.PrepareCall{<-first, <-dup} {
			for _, c := range calls {
				if c.Err != nil || c.Result.Vote != concord.VoteYes {
					t.Fatalf("%s: %+v, %v; want a yes vote", c.ID, c.Result, c.Err)
				}
			}
		}
		crashAndExpect(t, fs, s, "its yes vote was returned", map[concord.TxID]filestore.TxState{"a": filestore.StatePrepared, "b": filestore.StatePrepared})
	})
}

// CommitBatch returns once every COMMIT record is durable; a commit of a
// transaction never prepared fails alone.
func TestCommitBatchReturnsAfterTheSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		s := openDelay(t, fs, newCounter(10), -1)
		defer s.Close()
		prepare(t, s, "a", 1)
		prepare(t, s, "b", 1)
		calls := []participant.CommitCall{{ID: "a"}, {ID: "b"}, {ID: "never"}}
		returnsAfterTheSync(t, fs, "CommitBatch", func() { s.CommitBatch(context.Background(), calls) })
		if calls[0].Err != nil || calls[1].Err != nil {
			t.Fatalf("commits failed: %v, %v", calls[0].Err, calls[1].Err)
		}
		if calls[2].Err == nil {
			t.Fatal("commit of a transaction never prepared succeeded")
		}
		crashAndExpect(t, fs, s, "CommitBatch had returned", map[concord.TxID]filestore.TxState{"a": filestore.StateCommitted, "b": filestore.StateCommitted})
	})
}

// CommitOnePhaseBatch returns once every outcome it reports is durable:
// fresh commits, a refusal (it is final, so it is forced like a commit) and
// the commit of a transaction prepared in two phases.
func TestCommitOnePhaseBatchReturnsAfterTheSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fs := memfs.New()
		s := openDelay(t, fs, newCounter(10), -1)
		defer s.Close()
		prepare(t, s, "p", 1)
		calls := []participant.OnePhaseCall{
			{ID: "a", Payload: takePayload(1)}, {ID: "b", Payload: takePayload(2)},
			{ID: "too-many", Payload: takePayload(100)}, {ID: "p", Payload: takePayload(1)},
		}
		returnsAfterTheSync(t, fs, "CommitOnePhaseBatch", func() { s.CommitOnePhaseBatch(context.Background(), calls) })
		want := []concord.Outcome{concord.OutcomeCommitted, concord.OutcomeCommitted, concord.OutcomeAborted, concord.OutcomeCommitted}
		for i, c := range calls {
			if c.Err != nil || c.Outcome != want[i] {
				t.Fatalf("%s: %s (%s), %v; want %s", c.ID, c.Outcome, c.Reason, c.Err, want[i])
			}
		}
		crashAndExpect(t, fs, s, "CommitOnePhaseBatch had returned its outcome", map[concord.TxID]filestore.TxState{
			"a": filestore.StateCommitted, "b": filestore.StateCommitted, "too-many": filestore.StateAborted, "p": filestore.StateCommitted})
	})
}

// When the sync of a one-phase batch fails, no call reports an outcome
// (not even the refusal, which is final only once durable), and the store
// is broken until reopened.
func TestCommitOnePhaseBatchSyncFailure(t *testing.T) {
	fs := memfs.New()
	s := openDelay(t, fs, newCounter(10), -1)
	defer s.Close()
	fs.FailNth(memfs.OpSync, 1, errors.New("injected EIO"))
	calls := []participant.OnePhaseCall{{ID: "a", Payload: takePayload(1)}, {ID: "too-many", Payload: takePayload(100)}}
	s.CommitOnePhaseBatch(context.Background(), calls)
	for _, c := range calls {
		if c.Err == nil || c.Outcome != concord.OutcomePending {
			t.Fatalf("%s after a failed sync: %s (%s), %v; want an error and no outcome", c.ID, c.Outcome, c.Reason, c.Err)
		}
	}
	again := []participant.OnePhaseCall{{ID: "b", Payload: takePayload(1)}}
	s.CommitOnePhaseBatch(context.Background(), again)
	if !errors.Is(again[0].Err, filestore.ErrFailed) {
		t.Fatalf("a batch after the failure: %v, want ErrFailed", again[0].Err)
	}
}
