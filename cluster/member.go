// Package cluster is the shard membership of a coordinator cluster in etcd:
// a fixed shard count, the live members, and which member owns which
// shard.
//
// Keys, besides each shard's under /concord/<cluster>/shards/ (package
// etcdlog):
//
//	/concord/<cluster>/config        {"shards":N,"hash":"fnv1a64"}, put once
//	/concord/<cluster>/members/<id>  {"url":"..."}, put with the member's lease
//
// The shard count is fixed when the cluster is created (the first member's
// Join puts the config key) and a member with another count is refused
// (ErrShardCount): changing it would move every transaction to another
// shard. A transaction's shard is ShardOf(id, N), FNV-1a 64 of the id
// modulo N, stable forever.
//
// Each member holds one etcdlog.Session (its lease, TTL Config.TTL) and
// registers its id and advertised URL with it. It watches the members and
// assigns the shards by rendezvous hashing over the live ones (Assign):
// every member computes the same assignment from the same member list. It
// claims the shards assigned to it (etcdlog's Session.Claim: the owner
// key, exclusive, with its lease); it hands off those assigned to another
// (Config.OnRelease, in which the coordinator stops acting for the shard
// and closes its log, then Claim.Release); and when a member's lease lapses
// etcd deletes its member key and its owner keys at once, so the others'
// watches see the member go and claim its shards. A shard wanted but still
// owned (its former owner is handing it off) is watched until its owner key
// goes. No shard is ever owned twice: claims are exclusive in etcd, and
// every write of a shard's log is fenced by its claim. Members whose views
// of the membership differ for a moment may leave a shard unowned until
// the views agree.
package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/declog/etcdlog"
)

// ErrShardCount is returned by Join when the cluster was created with
// another shard count.
var ErrShardCount = errors.New("cluster: shard count differs from the cluster's")

// ErrMemberExists is returned by Join when a live member has the id.
var ErrMemberExists = errors.New("cluster: member id in use")

// DefaultTTL is the lease TTL of a zero Config.TTL.
const DefaultTTL = 5 * time.Second

// Config configures Join.
type Config struct {
	// Client reaches etcd. Required.
	Client *clientv3.Client
	// Cluster names the coordinator cluster (no '/'). Required.
	Cluster string
	// Shards is the cluster's shard count: set by the first member, and
	// every later one must give the same. Required, 1 to 65536.
	Shards int
	// ID identifies the member (no '/'), unique among the live members;
	// it is the owner name in the shards' owner keys. Required.
	ID string
	// URL is where the member takes submissions and queries, for Owner.
	URL string
	// TTL is the lease TTL, whole seconds: a member silent for that long
	// loses its shards. Default DefaultTTL.
	TTL time.Duration
	// Callbacks, called one at a time from the member's goroutine (not
	// concurrently with each other), each for one shard. None may call the
	// Member's Leave.
	//
	// OnGain: the member claimed the shard; open its log under c, replay
	// and recover it, then serve it. Return promptly (recover in another
	// goroutine): membership waits meanwhile.
	OnGain func(shard int, c *etcdlog.Claim)
	// OnRelease: planned hand-off, the shard goes to another member (or
	// the member leaves). Stop acting for it and close its log (every
	// record durable); the claim is released when OnRelease returns.
	OnRelease func(shard int, c *etcdlog.Claim)
	// OnLost: the ownership ended without a hand-off (the member's lease
	// lapsed): stop acting for the shard at once; its log is fenced.
	OnLost func(shard int, err error)
	// Resync is how often the member re-reads the membership as a
	// backstop to its watch, and retries claims that failed. Default TTL.
	Resync time.Duration
}

// Owner is a shard's owner as read from etcd.
type Owner struct {
	ID  string // member id
	URL string // its advertised URL, "" if it is no longer a member
}

// Member is this process's membership: its session, its registration and
// the shards it owns. Its methods are safe for concurrent use.
type Member struct {
	cfg        Config
	sess       *etcdlog.Session
	prefix     string // /concord/<cluster>/
	membersKey string // prefix of the member keys

	mu      sync.Mutex
	members map[string]string // live member id -> URL
	owned   map[int]*etcdlog.Claim
	waiting map[int]context.CancelFunc // wanted shards' owner-key watches
	unrel   map[int]*etcdlog.Claim     // handed off, Release still to succeed

	kick   chan struct{}
	cancel context.CancelFunc
	done   chan struct{} // the member's goroutine has returned
	lost   chan struct{} // closed once the membership is over
	left   bool
}

type configValue struct {
	Shards int    `json:"shards"`
	Hash   string `json:"hash"`
}

type memberValue struct {
	URL string `json:"url"`
}

const hashName = "fnv1a64"

// Join creates the cluster's config if it is new (checking the shard count
// otherwise), opens a session, registers the member and starts claiming
// the shards assigned to it.
func Join(ctx context.Context, cfg Config) (*Member, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("cluster: Config.Client is nil")
	case cfg.Cluster == "" || strings.ContainsAny(cfg.Cluster, "/\x00"):
		return nil, fmt.Errorf("cluster: Config.Cluster %q: want a non-empty name without '/'", cfg.Cluster)
	case cfg.ID == "" || strings.ContainsAny(cfg.ID, "/\x00"):
		return nil, fmt.Errorf("cluster: Config.ID %q: want a non-empty id without '/'", cfg.ID)
	case cfg.Shards < 1 || cfg.Shards > 65536:
		return nil, fmt.Errorf("cluster: Config.Shards %d: want 1 to 65536", cfg.Shards)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.Resync == 0 {
		cfg.Resync = cfg.TTL
	}
	if cfg.Resync < 0 {
		return nil, fmt.Errorf("cluster: Config.Resync %v is negative", cfg.Resync)
	}
	prefix := "/concord/" + cfg.Cluster + "/"
	if err := ensureConfig(ctx, cfg.Client, prefix+"config", cfg.Cluster, cfg.Shards); err != nil {
		return nil, err
	}
	sess, err := etcdlog.NewSession(ctx, cfg.Client, cfg.ID, cfg.TTL)
	if err != nil {
		return nil, err
	}
	m := &Member{
		cfg:        cfg,
		sess:       sess,
		prefix:     prefix,
		membersKey: prefix + "members/",
		members:    map[string]string{},
		owned:      map[int]*etcdlog.Claim{},
		waiting:    map[int]context.CancelFunc{},
		unrel:      map[int]*etcdlog.Claim{},
		kick:       make(chan struct{}, 1),
		done:       make(chan struct{}),
		lost:       make(chan struct{}),
	}
	val, _ := json.Marshal(memberValue{URL: cfg.URL})
	key := m.membersKey + cfg.ID
	resp, err := cfg.Client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val), clientv3.WithLease(sess.Lease()))).
		Commit()
	if err == nil && !resp.Succeeded {
		err = fmt.Errorf("%w: %q in cluster %q (a former process of that id may hold it until its lease lapses)", ErrMemberExists, cfg.ID, cfg.Cluster)
	}
	if err != nil {
		sess.Close(context.Background())
		return nil, fmt.Errorf("cluster: register %q: %w", cfg.ID, err)
	}
	wctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	go m.run(wctx)
	return m, nil
}

// ensureConfig puts the cluster's config key if absent, else checks it.
func ensureConfig(ctx context.Context, cli *clientv3.Client, key, cluster string, shards int) error {
	val, _ := json.Marshal(configValue{Shards: shards, Hash: hashName})
	resp, err := cli.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, string(val))).
		Else(clientv3.OpGet(key)).
		Commit()
	if err != nil {
		return fmt.Errorf("cluster: config of %q: %w", cluster, err)
	}
	if resp.Succeeded {
		return nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	if len(kvs) == 0 {
		return fmt.Errorf("cluster: config of %q vanished", cluster)
	}
	var c configValue
	if err := json.Unmarshal(kvs[0].Value, &c); err != nil {
		return fmt.Errorf("cluster: config of %q at %s: %q: %w", cluster, key, kvs[0].Value, err)
	}
	if c.Hash != hashName {
		return fmt.Errorf("cluster: config of %q: hash %q, this build knows %q only", cluster, c.Hash, hashName)
	}
	if c.Shards != shards {
		return fmt.Errorf("%w: cluster %q has %d shards, this member was started with %d", ErrShardCount, cluster, c.Shards, shards)
	}
	return nil
}

// ID returns the member's id.
func (m *Member) ID() string { return m.cfg.ID }

// Shards returns the cluster's shard count.
func (m *Member) Shards() int { return m.cfg.Shards }

// ShardOf returns the shard of transaction id: ShardOf(id, m.Shards()).
func (m *Member) ShardOf(id string) int { return ShardOf(id, m.cfg.Shards) }

// Session returns the member's session.
func (m *Member) Session() *etcdlog.Session { return m.sess }

// Lost returns a channel closed once the membership is over: the lease
// lapsed (OnLost was called for every shard owned), or Leave was called.
// A member whose lease lapsed must Join anew.
func (m *Member) Lost() <-chan struct{} { return m.lost }

// Owned returns the shards the member owns, ascending.
func (m *Member) Owned() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int, 0, len(m.owned))
	for s := range m.owned {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

// Claim returns the member's claim of shard, or nil if it does not own it.
func (m *Member) Claim(shard int) *etcdlog.Claim {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.owned[shard]
}

// Members returns the live members as this member last saw them: id ->
// advertised URL.
func (m *Member) Members() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.members))
	for id, u := range m.members {
		out[id] = u
	}
	return out
}

// Owner reads shard's owner from etcd (a linearizable read). ok is false
// if no member owns it now (between a hand-off's release and claim, or a
// lapsed lease and the takeover).
func (m *Member) Owner(ctx context.Context, shard int) (o Owner, ok bool, err error) {
	keys, err := etcdlog.ShardKeys(m.cfg.Cluster, shard)
	if err != nil {
		return Owner{}, false, err
	}
	if shard >= m.cfg.Shards {
		return Owner{}, false, fmt.Errorf("cluster: shard %d: the cluster has %d", shard, m.cfg.Shards)
	}
	resp, err := m.cfg.Client.Get(ctx, keys.Owner)
	if err != nil {
		return Owner{}, false, fmt.Errorf("cluster: owner of shard %d: %w", shard, err)
	}
	if len(resp.Kvs) == 0 {
		return Owner{}, false, nil
	}
	o.ID = string(resp.Kvs[0].Value)
	mresp, err := m.cfg.Client.Get(ctx, m.membersKey+o.ID)
	if err != nil {
		return Owner{}, false, fmt.Errorf("cluster: member %q: %w", o.ID, err)
	}
	if len(mresp.Kvs) > 0 {
		var v memberValue
		if json.Unmarshal(mresp.Kvs[0].Value, &v) == nil {
			o.URL = v.URL
		}
	}
	return o, true, nil
}

// Check confirms with etcd (a linearizable read) that the member owns
// shard; otherwise it returns an error wrapping declog.ErrFenced. A member
// must check before answering "aborted" by presumption.
func (m *Member) Check(ctx context.Context, shard int) error {
	c := m.Claim(shard)
	if c == nil {
		return fmt.Errorf("%w (shard %d of %q: not owned by member %q)", declog.ErrFenced, shard, m.cfg.Cluster, m.cfg.ID)
	}
	return c.Check(ctx)
}

// Leave is the planned shutdown: it stops following the membership, hands
// every owned shard off (OnRelease for each), and revokes the lease, which
// releases the shards and the registration at once.
func (m *Member) Leave(ctx context.Context) error {
	m.mu.Lock()
	if m.left {
		m.mu.Unlock()
		return errors.New("cluster: Leave called twice")
	}
	m.left = true
	m.mu.Unlock()
	m.cancel()
	<-m.done
	m.mu.Lock()
	owned := m.owned
	m.owned = map[int]*etcdlog.Claim{}
	m.mu.Unlock()
	for _, s := range sortedKeys(owned) {
		if m.cfg.OnRelease != nil {
			m.cfg.OnRelease(s, owned[s])
		}
	}
	err := m.sess.Close(ctx)
	m.markLost()
	return err
}

func (m *Member) markLost() {
	select {
	case <-m.lost:
	default:
		close(m.lost)
	}
}

func sortedKeys(c map[int]*etcdlog.Claim) []int {
	out := make([]int, 0, len(c))
	for s := range c {
		out = append(out, s)
	}
	sort.Ints(out)
	return out
}

func (m *Member) poke() {
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// run follows the membership until ctx ends (Leave) or the session is
// lost.
func (m *Member) run(ctx context.Context) {
	defer close(m.done)
	defer func() {
		m.mu.Lock()
		for _, cancel := range m.waiting {
			cancel()
		}
		m.waiting = map[int]context.CancelFunc{}
		m.mu.Unlock()
	}()
	tick := time.NewTicker(m.cfg.Resync)
	defer tick.Stop()
	for {
		rev, err := m.list(ctx)
		if err != nil {
			select {
			case <-ctx.Done():
				return
			case <-m.sess.Lost():
				m.sessionLost()
				return
			case <-tick.C:
				continue
			}
		}
		m.reconcile(ctx)
		wctx, wcancel := context.WithCancel(ctx)
		wch := m.cfg.Client.Watch(clientv3.WithRequireLeader(wctx), m.membersKey, clientv3.WithPrefix(), clientv3.WithRev(rev+1))
	follow:
		for {
			select {
			case <-ctx.Done():
				wcancel()
				return
			case <-m.sess.Lost():
				wcancel()
				m.sessionLost()
				return
			case resp, ok := <-wch:
				if !ok || resp.Err() != nil {
					break follow // re-list and watch again
				}
				m.apply(resp.Events)
				m.reconcile(ctx)
			case <-m.kick:
				m.reconcile(ctx)
			case <-tick.C:
				break follow
			}
		}
		wcancel()
	}
}

// list reads the members and returns the revision read at.
func (m *Member) list(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
	defer cancel()
	resp, err := m.cfg.Client.Get(ctx, m.membersKey, clientv3.WithPrefix())
	if err != nil {
		return 0, err
	}
	members := map[string]string{}
	for _, kv := range resp.Kvs {
		var v memberValue
		json.Unmarshal(kv.Value, &v)
		members[strings.TrimPrefix(string(kv.Key), m.membersKey)] = v.URL
	}
	m.mu.Lock()
	m.members = members
	m.mu.Unlock()
	return resp.Header.Revision, nil
}

func (m *Member) apply(evs []*clientv3.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, ev := range evs {
		id := strings.TrimPrefix(string(ev.Kv.Key), m.membersKey)
		if ev.Type == clientv3.EventTypeDelete {
			delete(m.members, id)
			continue
		}
		var v memberValue
		json.Unmarshal(ev.Kv.Value, &v)
		m.members[id] = v.URL
	}
}

// sessionLost ends the membership: every shard owned is lost.
func (m *Member) sessionLost() {
	m.mu.Lock()
	owned := m.owned
	m.owned = map[int]*etcdlog.Claim{}
	m.mu.Unlock()
	err := fmt.Errorf("cluster: member %q: %w", m.cfg.ID, etcdlog.ErrSessionLost)
	for _, s := range sortedKeys(owned) {
		if m.cfg.OnLost != nil {
			m.cfg.OnLost(s, err)
		}
	}
	m.markLost()
}

// reconcile hands off the shards assigned to others and claims those
// assigned to this member.
func (m *Member) reconcile(ctx context.Context) {
	m.mu.Lock()
	ids := make([]string, 0, len(m.members))
	for id := range m.members {
		ids = append(ids, id)
	}
	m.mu.Unlock()
	assign := Assign(ids, m.cfg.Shards)
	me := m.cfg.ID

	// Hand-offs first: the shards' new owners are waiting for them.
	m.mu.Lock()
	var give []int
	for s := range m.owned {
		if assign[s] != me {
			give = append(give, s)
		}
	}
	m.mu.Unlock()
	sort.Ints(give)
	for _, s := range give {
		m.mu.Lock()
		c := m.owned[s]
		delete(m.owned, s)
		m.mu.Unlock()
		if m.cfg.OnRelease != nil {
			m.cfg.OnRelease(s, c)
		}
		m.unrel[s] = c
	}
	for s, c := range m.unrel {
		rctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
		err := c.Release(rctx)
		cancel()
		if err == nil || errors.Is(err, declog.ErrFenced) {
			delete(m.unrel, s)
		}
	}

	for s := range m.cfg.Shards {
		m.mu.Lock()
		_, have := m.owned[s]
		want := assign[s] == me && !have
		cancelWatch, watching := m.waiting[s]
		if !want && watching {
			cancelWatch()
			delete(m.waiting, s)
		}
		m.mu.Unlock()
		if !want {
			continue
		}
		if _, unreleased := m.unrel[s]; unreleased {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, m.cfg.TTL)
		c, err := m.sess.Claim(cctx, m.cfg.Cluster, s)
		cancel()
		if err != nil {
			if errors.Is(err, etcdlog.ErrOwned) {
				// Watch from now on (a former watch may have seen
				// a release that another member's claim followed).
				if watching {
					cancelWatch()
				}
				m.watchOwner(ctx, s)
			}
			continue // retried on the next change or resync
		}
		m.mu.Lock()
		if watching {
			cancelWatch()
			delete(m.waiting, s)
		}
		m.owned[s] = c
		m.mu.Unlock()
		if m.cfg.OnGain != nil {
			m.cfg.OnGain(s, c)
		}
	}
}

// watchOwner pokes the member once shard's owner key is gone.
func (m *Member) watchOwner(ctx context.Context, shard int) {
	keys, _ := etcdlog.ShardKeys(m.cfg.Cluster, shard)
	wctx, cancel := context.WithCancel(ctx)
	m.mu.Lock()
	m.waiting[shard] = cancel
	m.mu.Unlock()
	go func() {
		gctx, gcancel := context.WithTimeout(wctx, m.cfg.TTL)
		resp, err := m.cfg.Client.Get(gctx, keys.Owner)
		gcancel()
		if err != nil {
			return // the resync retries
		}
		if len(resp.Kvs) == 0 {
			m.poke()
			return
		}
		for wr := range m.cfg.Client.Watch(clientv3.WithRequireLeader(wctx), keys.Owner, clientv3.WithRev(resp.Header.Revision+1)) {
			if wr.Err() != nil {
				return
			}
			for _, ev := range wr.Events {
				if ev.Type == clientv3.EventTypeDelete {
					m.poke()
					return
				}
			}
		}
	}()
}
