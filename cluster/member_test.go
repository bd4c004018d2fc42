package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/declog/etcdlog"
	"github.com/concordtx/concord/wal"
)

// node is a member as a coordinator would use it: on gaining a shard it
// opens the shard's log, replays it and appends a record naming itself; on
// a hand-off it closes the log (every record durable).
type node struct {
	t  *testing.T
	id string
	m  *Member

	mu       sync.Mutex
	logs     map[int]*etcdlog.Log
	replayed map[int][]string // what each gain replayed
	gained   map[int]time.Time
	released map[int]time.Time
	lost     map[int]error
	errs     []error
}

// join makes a member. Its resync is 30 s, so that the tests see what
// the watches do.
func join(t *testing.T, cli *clientv3.Client, cluster, id string, shards int, ttl time.Duration) *node {
	t.Helper()
	n := &node{t: t, id: id, logs: map[int]*etcdlog.Log{}, replayed: map[int][]string{},
		gained: map[int]time.Time{}, released: map[int]time.Time{}, lost: map[int]error{}}
	m, err := Join(ctxT(t), Config{
		Client: cli, Cluster: cluster, Shards: shards, ID: id, URL: "http://" + id + ".test", TTL: ttl, Resync: 30 * time.Second,
		OnGain:    n.gain,
		OnRelease: n.release,
		OnLost: func(s int, err error) {
			n.mu.Lock()
			n.lost[s] = err
			n.mu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	n.m = m
	t.Cleanup(func() {
		select {
		case <-m.Lost():
		default:
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			m.Leave(ctx)
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, l := range n.logs {
			l.Close()
		}
		for _, err := range n.errs {
			t.Errorf("member %s: %v", id, err)
		}
	})
	return n
}

func (n *node) fail(err error) {
	n.mu.Lock()
	n.errs = append(n.errs, err)
	n.mu.Unlock()
}

func (n *node) gain(s int, c *etcdlog.Claim) {
	at := time.Now()
	l, err := etcdlog.Open(context.Background(), etcdlog.Options{Claim: c, Timeout: 2 * time.Second})
	if err != nil {
		n.fail(fmt.Errorf("open shard %d: %w", s, err))
		return
	}
	var got []string
	if err := l.Replay(1, func(r wal.Record) error { got = append(got, string(r.Payload)); return nil }); err != nil {
		n.fail(fmt.Errorf("replay shard %d: %w", s, err))
	}
	if _, err := l.Append(1, []byte(n.id)); err != nil {
		n.fail(fmt.Errorf("append to shard %d: %w", s, err))
	}
	n.mu.Lock()
	n.logs[s], n.replayed[s], n.gained[s] = l, got, at
	n.mu.Unlock()
}

func (n *node) release(s int, c *etcdlog.Claim) {
	n.mu.Lock()
	l := n.logs[s]
	delete(n.logs, s)
	n.released[s] = time.Now()
	n.mu.Unlock()
	if l != nil {
		if err := l.Close(); err != nil {
			n.fail(fmt.Errorf("close shard %d: %w", s, err))
		}
	}
}

// stable reports whether the nodes own exactly the shards Assign gives
// them over their ids, each shard once, and etcd's owner keys agree.
func stable(t *testing.T, shards int, nodes ...*node) bool {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.id)
	}
	want := Assign(ids, shards)
	owners := make([]string, shards)
	for _, n := range nodes {
		for _, s := range n.m.Owned() {
			if owners[s] != "" {
				t.Fatalf("shard %d owned by %s and %s", s, owners[s], n.id)
			}
			owners[s] = n.id
		}
		n.mu.Lock()
		logs := len(n.logs)
		n.mu.Unlock()
		if logs != len(n.m.Owned()) {
			return false // a gain still under way
		}
	}
	if !slices.Equal(owners, want) {
		return false
	}
	for s := range shards {
		o, ok, err := nodes[0].m.Owner(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		if !ok || o.ID != want[s] || o.URL != "http://"+want[s]+".test" {
			return false
		}
	}
	return true
}

// TestSplitAndHandOff: one member owns every shard; a second and a third
// join and get their share by planned hand-off (the former owner closes
// the shard's log, then releases); once stable, no shard is owned twice
// and none is unowned, and each new owner replayed the records of the
// former owners.
func TestSplitAndHandOff(t *testing.T) {
	const shards = 12
	cli := newClient(t)
	name := newClusterName()
	a := join(t, cli, name, "a", shards, 5*time.Second)
	waitFor(t, 10*time.Second, "a owns all", func() bool { return stable(t, shards, a) })

	b := join(t, cli, name, "b", shards, 5*time.Second)
	took := waitFor(t, 10*time.Second, "a and b split", func() bool { return stable(t, shards, a, b) })
	t.Logf("two members: stable %v after b joined (b owns %v)", took.Round(time.Millisecond), b.m.Owned())
	handOffs(t, a, b)

	c := join(t, cli, name, "c", shards, 5*time.Second)
	took = waitFor(t, 10*time.Second, "a, b and c split", func() bool { return stable(t, shards, a, b, c) })
	t.Logf("three members: stable %v after c joined (c owns %v)", took.Round(time.Millisecond), c.m.Owned())
	handOffs(t, a, c)
	handOffs(t, b, c)

	if len(a.m.Owned()) == 0 || len(b.m.Owned()) == 0 || len(c.m.Owned()) == 0 {
		t.Fatalf("a member owns nothing: a %v b %v c %v", a.m.Owned(), b.m.Owned(), c.m.Owned())
	}
	// Every shard's log holds the records of all its owners in turn.
	for _, n := range []*node{b, c} {
		n.mu.Lock()
		for s, got := range n.replayed {
			if len(got) == 0 || got[0] != "a" {
				t.Errorf("%s replayed shard %d: %q, want a's record first", n.id, s, got)
			}
		}
		n.mu.Unlock()
	}
	// Check says owned for what is owned, fenced for the rest.
	for s := range shards {
		owned := slices.Contains(a.m.Owned(), s)
		err := a.m.Check(context.Background(), s)
		if owned != (err == nil) || (!owned && !errors.Is(err, declog.ErrFenced)) {
			t.Errorf("a.Check(%d) = %v, owned %v", s, err, owned)
		}
	}
}

// handOffs logs, for each shard from moved to to, the time from from's
// OnRelease to to's OnGain.
func handOffs(t *testing.T, from, to *node) {
	from.mu.Lock()
	to.mu.Lock()
	defer from.mu.Unlock()
	defer to.mu.Unlock()
	var ds []time.Duration
	for s, r := range from.released {
		// Only shards that went from from to to directly: the last record
		// to replayed is from's.
		got := to.replayed[s]
		if g, ok := to.gained[s]; ok && len(got) > 0 && got[len(got)-1] == from.id {
			ds = append(ds, g.Sub(r))
		}
	}
	if len(ds) == 0 {
		return
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	t.Logf("hand-off %s -> %s, %d shards: release to claim median %v, max %v", from.id, to.id, len(ds),
		ds[len(ds)/2].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}

// TestLeaseLapseTakeover: of three members, one is cut off from etcd (as a
// killed or frozen process); once its 2 s lease lapses, the other two take
// its shards. It learns it lost them (OnLost), and after it is back on the
// network it cannot write: its logs are fenced, and etcd refuses a log
// opened under its stale claims.
func TestLeaseLapseTakeover(t *testing.T) {
	const shards = 12
	const ttl = 2 * time.Second
	name := newClusterName()
	cli := newClient(t)
	ccli, proxies := newProxiedClient(t)
	a := join(t, cli, name, "a", shards, ttl)
	b := join(t, cli, name, "b", shards, ttl)
	c := join(t, ccli, name, "c", shards, ttl)
	waitFor(t, 15*time.Second, "three split", func() bool { return stable(t, shards, a, b, c) })
	cOwned := c.m.Owned()
	if len(cOwned) == 0 {
		t.Fatal("c owns nothing")
	}
	var stale []*etcdlog.Claim
	for _, s := range cOwned {
		stale = append(stale, c.m.Claim(s))
	}
	cut := time.Now()
	for _, p := range proxies {
		p.Cut()
	}
	took := waitFor(t, ttl+2*time.Second, "a and b own all", func() bool { return stable(t, shards, a, b) })
	t.Logf("c's %d shards taken over %v after c was cut off (lease TTL %v)", len(cOwned), took.Round(time.Millisecond), ttl)
	if took < ttl-500*time.Millisecond {
		t.Fatalf("taken over after %v, before the %v lease could lapse", took, ttl)
	}
	<-c.m.Lost()
	c.mu.Lock()
	for _, s := range cOwned {
		if !errors.Is(c.lost[s], etcdlog.ErrSessionLost) {
			t.Errorf("c's OnLost for shard %d: %v", s, c.lost[s])
		}
	}
	cLogs := c.logs
	c.mu.Unlock()
	t.Logf("c knew it lost them %v after the cut", time.Since(cut).Round(time.Millisecond))
	for _, p := range proxies {
		p.Restore()
	}
	for s, l := range cLogs {
		if _, err := l.Append(1, []byte("stale")); !errors.Is(err, declog.ErrFenced) {
			t.Errorf("stale append to shard %d: %v, want ErrFenced", s, err)
		}
	}
	for _, cl := range stale {
		if _, err := etcdlog.Open(context.Background(), etcdlog.Options{Claim: cl, Timeout: 5 * time.Second}); !errors.Is(err, declog.ErrFenced) {
			t.Errorf("open under c's stale claim of shard %d: %v, want ErrFenced", cl.Shard(), err)
		}
		if err := c.m.Check(context.Background(), cl.Shard()); !errors.Is(err, declog.ErrFenced) {
			t.Errorf("c.Check(%d) = %v, want ErrFenced", cl.Shard(), err)
		}
	}
	// The new owners replayed c's record: nothing acknowledged was lost.
	for _, s := range cOwned {
		for _, n := range []*node{a, b} {
			if !slices.Contains(n.m.Owned(), s) {
				continue
			}
			n.mu.Lock()
			got := n.replayed[s]
			n.mu.Unlock()
			if len(got) == 0 || got[len(got)-1] != "c" {
				t.Errorf("%s replayed shard %d: %q, want c's record last", n.id, s, got)
			}
		}
	}
}

// TestShardCountFixed: the first member sets the shard count; a member
// with another is refused, naming both.
func TestShardCountFixed(t *testing.T) {
	cli := newClient(t)
	name := newClusterName()
	join(t, cli, name, "a", 8, 5*time.Second)
	_, err := Join(ctxT(t), Config{Client: cli, Cluster: name, Shards: 16, ID: "b"})
	if !errors.Is(err, ErrShardCount) {
		t.Fatalf("Join with 16 shards of an 8-shard cluster: %v, want ErrShardCount", err)
	}
	t.Log(err)
}

// TestMemberIDInUse: a second live member of the same id is refused.
func TestMemberIDInUse(t *testing.T) {
	cli := newClient(t)
	name := newClusterName()
	join(t, cli, name, "a", 4, 5*time.Second)
	if _, err := Join(ctxT(t), Config{Client: cli, Cluster: name, Shards: 4, ID: "a"}); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("second member a: %v, want ErrMemberExists", err)
	}
}

// TestLeaveHandsOff: a member that leaves hands its shards off (closes
// their logs) and the other takes them at once, without waiting for a
// lease.
func TestLeaveHandsOff(t *testing.T) {
	const shards = 8
	cli := newClient(t)
	name := newClusterName()
	a := join(t, cli, name, "a", shards, 30*time.Second)
	b := join(t, cli, name, "b", shards, 30*time.Second)
	waitFor(t, 10*time.Second, "split", func() bool { return stable(t, shards, a, b) })
	start := time.Now()
	if err := b.m.Leave(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a owns all", func() bool { return stable(t, shards, a) })
	t.Logf("b left: a owns all %v after Leave began (lease TTL 30s)", time.Since(start).Round(time.Millisecond))
}

func TestBadConfig(t *testing.T) {
	cli := newClient(t)
	for _, c := range []Config{
		{Cluster: "x", Shards: 1, ID: "a"},
		{Client: cli, Cluster: "", Shards: 1, ID: "a"},
		{Client: cli, Cluster: "a/b", Shards: 1, ID: "a"},
		{Client: cli, Cluster: "x", Shards: 0, ID: "a"},
		{Client: cli, Cluster: "x", Shards: 1, ID: ""},
		{Client: cli, Cluster: "x", Shards: 1, ID: "a", TTL: 1500 * time.Millisecond},
	} {
		if _, err := Join(ctxT(t), c); err == nil {
			t.Errorf("Join(%+v) succeeded", c)
		}
	}
}
