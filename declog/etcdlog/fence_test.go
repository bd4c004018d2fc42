package etcdlog

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/internal/etcdtest"
	"github.com/concordtx/concord/wal"
)

// TestStaleClaimRefused: a log writing under a claim that is no longer the
// shard's owner key (released, and claimed again since) is refused by etcd,
// though its session is alive and the process does not know: the fence is
// the owner key's revision in every Txn.
func TestStaleClaimRefused(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli, "a", 10*time.Second)
	name := newClusterName(t)
	old := mustClaim(t, s, name, 0)
	stale := mustOpenLog(t, Options{Claim: old})
	defer stale.Close()
	for i := range 3 {
		if _, err := stale.Append(1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	// A second log under the old claim, which will not append before it
	// compacts.
	staleC := mustOpenLog(t, Options{Claim: old})
	defer staleC.Close()
	ctx := context.Background()
	if err := old.Release(ctx); err != nil {
		t.Fatal(err)
	}
	cur := mustClaim(t, s, name, 0)
	if cur.Revision() == old.Revision() {
		t.Fatal("claim revisions equal")
	}
	if _, err := stale.Append(1, []byte("stale")); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("append under a stale claim: %v, want ErrFenced", err)
	}
	if err := old.Check(ctx); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Check of a stale claim: %v, want ErrFenced", err)
	}
	if err := old.Release(ctx); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Release of a stale claim: %v, want ErrFenced", err)
	}
	if err := cur.Check(ctx); err != nil {
		t.Fatalf("Check of the current claim: %v", err)
	}
	// Nothing of the stale writer reached etcd: the new owner's log ends
	// at 3 and goes on from there.
	l := mustOpenLog(t, Options{Claim: cur})
	defer l.Close()
	if got := l.LastSeq(); got != 3 {
		t.Fatalf("new owner's log ends at %d, want 3", got)
	}
	if seq, err := l.Append(2, []byte("new owner")); err != nil || seq != 4 {
		t.Fatalf("new owner's append: seq %d err %v", seq, err)
	}
	// A compaction under the stale claim is refused too.
	if err := staleC.Compact(3); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("compaction under a stale claim: %v, want ErrFenced", err)
	}
	var seqs []uint64
	if err := l.Replay(0, func(r wal.Record) error {
		seqs = append(seqs, r.Seq)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(seqs) != 4 || seqs[0] != 1 {
		t.Fatalf("after a refused compaction the log holds records %v, want 1..4", seqs)
	}
}

// TestClaimOwned: a shard held by one session cannot be claimed by another
// until it is released; then at once.
func TestClaimOwned(t *testing.T) {
	cli := newClient(t)
	a := newSession(t, cli, "a", 10*time.Second)
	b := newSession(t, cli, "b", 10*time.Second)
	name := newClusterName(t)
	ca := mustClaim(t, a, name, 3)
	ctx := context.Background()
	if _, err := b.Claim(ctx, name, 3); !errors.Is(err, ErrOwned) {
		t.Fatalf("claim of an owned shard: %v, want ErrOwned", err)
	}
	if _, err := b.Claim(ctx, name, 4); err != nil {
		t.Fatalf("claim of another shard: %v", err)
	}
	if err := ca.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Claim(ctx, name, 3); err != nil {
		t.Fatalf("claim after release: %v", err)
	}
}

// TestLeaseExpiryTakeover: a coordinator cut off from etcd loses its 2 s
// lease; another claims the shard once etcd has let the lease lapse; the
// first, back on the network, is fenced, and nothing it tried reached the
// log.
func TestLeaseExpiryTakeover(t *testing.T) {
	var eps []string
	var proxies []*etcdtest.Proxy
	for _, m := range cluster.Members {
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		p, err := etcdtest.NewProxy(u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		proxies = append(proxies, p)
		eps = append(eps, "http://"+p.Addr())
	}
	cliA, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cliA.Close()
	name := newClusterName(t)
	sa := newSession(t, cliA, "a", 2*time.Second)
	la := mustOpenLog(t, Options{Claim: mustClaim(t, sa, name, 0), Timeout: time.Second})
	defer la.Close()
	for i := range 5 {
		if _, err := la.Append(1, []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}

	for _, p := range proxies {
		p.Cut()
	}
	cut := time.Now()
	if seq, err := la.Append(1, []byte("cut off")); err == nil {
		t.Fatalf("append while cut off from etcd acknowledged at %d", seq)
	}

	cli := newClient(t)
	sb := newSession(t, cli, "b", 10*time.Second)
	var cb *Claim
	for cb == nil {
		c, err := sb.Claim(context.Background(), name, 0)
		switch {
		case err == nil:
			cb = c
		case !errors.Is(err, ErrOwned):
			t.Fatal(err)
		case time.Since(cut) > 15*time.Second:
			t.Fatalf("shard still owned %v after its owner was cut off with a 2s lease", time.Since(cut))
		default:
			time.Sleep(20 * time.Millisecond) // poll the claim
		}
	}
	t.Logf("taken over %v after the owner was cut off", time.Since(cut).Round(time.Millisecond))

	for _, p := range proxies {
		p.Restore()
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		_, err := la.Append(1, []byte("back"))
		if errors.Is(err, declog.ErrFenced) {
			break
		}
		if err == nil {
			t.Fatal("former owner's append acknowledged after another claimed the shard")
		}
		if time.Now().After(deadline) {
			t.Fatalf("former owner not fenced 15s after reconnecting: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // poll until it has heard from etcd
	}
	lb := mustOpenLog(t, Options{Claim: cb})
	defer lb.Close()
	if got := lb.LastSeq(); got != 5 {
		t.Fatalf("new owner's log ends at %d, want the 5 acknowledged", got)
	}
	if seq, err := lb.Append(2, []byte("b")); err != nil || seq != 6 {
		t.Fatalf("new owner's append: %d %v", seq, err)
	}
}

// TestSessionLostFencesIdleLog: a coordinator cut off from etcd past its
// lease's TTL counts its session as lost and its logs as fenced, by itself,
// while still cut off (it cannot know whether another took the shard):
// Sync and Check fail with ErrFenced without any answer from etcd.
func TestSessionLostFencesIdleLog(t *testing.T) {
	var eps []string
	var proxies []*etcdtest.Proxy
	for _, m := range cluster.Members {
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		p, err := etcdtest.NewProxy(u.Host)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		proxies = append(proxies, p)
		eps = append(eps, "http://"+p.Addr())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	s := newSession(t, cli, "a", 2*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim})
	defer l.Close()
	if _, err := l.Append(1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	for _, p := range proxies {
		p.Cut()
	}
	cut := time.Now()
	for {
		err := l.Sync()
		if errors.Is(err, declog.ErrFenced) {
			break
		}
		if err != nil {
			t.Fatalf("Sync of an idle log cut off from etcd: %v", err)
		}
		if time.Since(cut) > 10*time.Second {
			t.Fatal("idle log not fenced 10s after being cut off with a 2s lease")
		}
		time.Sleep(20 * time.Millisecond) // poll
	}
	t.Logf("fenced %v after being cut off", time.Since(cut).Round(time.Millisecond))
	if err := claim.Check(context.Background()); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Check after the session was lost: %v, want ErrFenced", err)
	}
	if _, err := l.Append(1, []byte("y")); !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Append after the session was lost: %v, want ErrFenced", err)
	}
}
