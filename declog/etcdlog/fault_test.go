package etcdlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/internal/etcdtest"
	"github.com/concordtx/concord/wal"
)

// acked records what appends were acknowledged, to check against the log.
type acked struct {
	mu   sync.Mutex
	recs map[uint64][]byte
}

func (a *acked) add(seq uint64, p []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.recs == nil {
		a.recs = map[uint64][]byte{}
	}
	if _, dup := a.recs[seq]; dup {
		return fmt.Errorf("seq %d acknowledged twice", seq)
	}
	a.recs[seq] = p
	return nil
}

// check fails t unless every acknowledged record is in the log of claim,
// as acknowledged, and the log has no gap.
func (a *acked) check(t *testing.T, claim *Claim) {
	t.Helper()
	l := mustOpenLog(t, Options{Claim: claim})
	defer l.Close()
	found := map[uint64][]byte{}
	next := uint64(1)
	if err := l.Replay(0, func(r wal.Record) error {
		if r.Seq != next {
			return fmt.Errorf("record %d after %d", r.Seq, next-1)
		}
		next++
		found[r.Seq] = r.Payload
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for seq, p := range a.recs {
		if got, ok := found[seq]; !ok || !bytes.Equal(got, p) {
			t.Fatalf("acknowledged record %d (%q) lost: log has %q", seq, p, got)
		}
	}
	t.Logf("%d records acknowledged, all in the log of %d", len(a.recs), len(found))
}

// restartAll starts every stopped member again and waits for the cluster.
func restartAll(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, m := range cluster.Members {
		if !m.Running() {
			if err := m.Restart(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, m := range cluster.Members {
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaderKilledMidAppend: 16 appenders append without pause while the
// etcd leader is killed with SIGKILL. Appends go on (the log retries its
// chunk Txn on the new leader, each chunk written at most once), and every
// acknowledged record is in the log, as acknowledged.
func TestLeaderKilledMidAppend(t *testing.T) {
	defer restartAll(t)
	cli := newClient(t)
	s := newSession(t, cli, "a", 10*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim, Timeout: 10 * time.Second})
	var ack acked
	var killedAt atomic.Int64 // unix nanos, once killed
	var firstAfter atomic.Int64
	var failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := []byte(fmt.Sprintf("w%d-%d", w, i))
				start := time.Now().UnixNano()
				seq, err := l.Append(1, p)
				if err != nil {
					if !errors.Is(err, declog.ErrUnavailable) {
						errs <- err
						return
					}
					failures.Add(1)
					continue
				}
				if err := ack.add(seq, p); err != nil {
					errs <- err
					return
				}
				if k := killedAt.Load(); k != 0 && start > k {
					firstAfter.CompareAndSwap(0, time.Now().UnixNano())
				}
			}
		}()
	}
	waitAcked := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for {
			ack.mu.Lock()
			got := len(ack.recs)
			ack.mu.Unlock()
			if got >= n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("only %d records acknowledged after 30s, want %d", got, n)
			}
			time.Sleep(10 * time.Millisecond) // poll the count
		}
	}
	waitAcked(500)
	leader, err := cluster.Leader(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ack.mu.Lock()
	before := len(ack.recs)
	ack.mu.Unlock()
	killedAt.Store(time.Now().UnixNano())
	leader.Kill()
	t.Logf("killed leader %s with %d records acknowledged", leader.Name, before)
	waitAcked(before + 2000)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if f := firstAfter.Load(); f != 0 {
		t.Logf("first append begun after the kill acknowledged %v after it; %d appends failed (unavailable) meanwhile",
			time.Duration(f-killedAt.Load()).Round(time.Millisecond), failures.Load())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ack.check(t, claim)
}

// TestQuorumLost: with 2 of 3 members killed, an append fails with
// ErrUnavailable within the log's timeout (no hang), later ones fail at
// once, and appends resume once the members are back, with every
// acknowledged record in the log.
func TestQuorumLost(t *testing.T) {
	defer restartAll(t)
	const timeout = 2 * time.Second
	cli := newClient(t)
	// The lease must outlive the outage, or the session counts as lost
	// (and the log as fenced), as it must.
	s := newSession(t, cli, "a", 60*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim, Timeout: timeout})
	defer l.Close()
	var ack acked
	appendOne := func(i int) (time.Duration, error) {
		p := []byte(fmt.Sprintf("rec-%d", i))
		start := time.Now()
		seq, err := l.Append(1, p)
		if err == nil {
			if err := ack.add(seq, p); err != nil {
				t.Fatal(err)
			}
		}
		return time.Since(start), err
	}
	for i := range 20 {
		if _, err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	var killed []*etcdtest.Member
	for _, m := range cluster.Members[:2] {
		m.Kill()
		killed = append(killed, m)
	}
	took, err := appendOne(100)
	if !errors.Is(err, declog.ErrUnavailable) {
		t.Fatalf("append without quorum: %v after %v, want ErrUnavailable", err, took)
	}
	if took > timeout+time.Second {
		t.Fatalf("append without quorum failed after %v, timeout %v", took, timeout)
	}
	t.Logf("append without quorum failed after %v: %v", took.Round(time.Millisecond), err)
	took, err = appendOne(101)
	if !errors.Is(err, declog.ErrUnavailable) || took > 100*time.Millisecond {
		t.Fatalf("second append without quorum: %v after %v, want ErrUnavailable at once", err, took)
	}
	if err := l.Sync(); !errors.Is(err, declog.ErrUnavailable) {
		t.Fatalf("Sync without quorum: %v", err)
	}
	back := time.Now()
	for _, m := range killed {
		if err := m.Restart(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 200; ; i++ {
		_, err := appendOne(i)
		if err == nil {
			break
		}
		if !errors.Is(err, declog.ErrUnavailable) {
			t.Fatalf("append after quorum came back: %v", err)
		}
		if time.Since(back) > 60*time.Second {
			t.Fatalf("appends not resumed 60s after the members were restarted: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // poll until the log takes appends again
	}
	t.Logf("appends resumed %v after restarting the members", time.Since(back).Round(time.Millisecond))
	for i := 300; i < 320; i++ {
		if _, err := appendOne(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ack.check(t, claim)
}
