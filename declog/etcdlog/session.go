package etcdlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/declog"
)

// ErrOwned is returned by Claim when another process owns the shard.
var ErrOwned = errors.New("etcdlog: shard owned by another process")

// ErrSessionLost is wrapped by the errors of a session whose lease has
// lapsed or was revoked; every claim it made is fenced.
var ErrSessionLost = errors.New("etcdlog: session lease lost")

// Session is one coordinator process's hold on etcd: a lease, kept alive
// while the session lasts. Shards are claimed with it; when the lease
// lapses (the process stopped, or lost etcd for longer than the TTL), etcd
// deletes every owner key put with it, and the shards are free to claim.
type Session struct {
	client *clientv3.Client
	name   string
	lease  clientv3.LeaseID
	ttl    time.Duration
	cancel context.CancelFunc
	lost   chan struct{} // closed once the lease is known lost
	once   sync.Once
}

// NewSession grants a lease of ttl (whole seconds, at least 1 s) and keeps
// it alive. name identifies the process in the owner keys (for operators:
// which coordinator owns which shard).
func NewSession(ctx context.Context, client *clientv3.Client, name string, ttl time.Duration) (*Session, error) {
	if name == "" {
		return nil, errors.New("etcdlog: session name is empty")
	}
	secs := int64(ttl / time.Second)
	if secs < 1 || ttl%time.Second != 0 {
		return nil, fmt.Errorf("etcdlog: lease TTL %v: want whole seconds, at least 1s", ttl)
	}
	g, err := client.Grant(ctx, secs)
	if err != nil {
		return nil, fmt.Errorf("etcdlog: grant lease: %w", err)
	}
	kctx, cancel := context.WithCancel(context.Background())
	ch, err := client.KeepAlive(kctx, g.ID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("etcdlog: keep lease %x alive: %w", int64(g.ID), err)
	}
	s := &Session{client: client, name: name, lease: g.ID, ttl: ttl, cancel: cancel, lost: make(chan struct{})}
	go func() {
		// The client closes ch once it cannot keep the lease alive: the
		// lease expired, or no keepalive answer came within its TTL, or
		// the session was closed. Either way this process may no longer
		// own what it claimed.
		for range ch {
		}
		s.markLost()
	}()
	return s, nil
}

func (s *Session) markLost() { s.once.Do(func() { close(s.lost) }) }

// Name returns the session's name.
func (s *Session) Name() string { return s.name }

// Lease returns the session's lease.
func (s *Session) Lease() clientv3.LeaseID { return s.lease }

// Lost returns a channel closed once the session's lease is known lost.
func (s *Session) Lost() <-chan struct{} { return s.lost }

// Close revokes the lease, which releases every shard the session claimed
// at once (a planned shutdown), and stops keeping it alive.
func (s *Session) Close(ctx context.Context) error {
	_, err := s.client.Revoke(ctx, s.lease)
	s.cancel()
	s.markLost()
	if err != nil {
		return fmt.Errorf("etcdlog: revoke lease %x: %w", int64(s.lease), err)
	}
	return nil
}

// Claim is a session's ownership of one shard: the owner key, put with the
// session's lease at Revision.
type Claim struct {
	session *Session
	cluster string
	shard   int
	keys    Keys
	rev     int64
}

// Claim takes shard of cluster if nobody owns it: it puts the owner key
// with the session's lease unless the key exists. A shard owned by another
// session (or still by this one) fails with an error wrapping ErrOwned and
// naming the owner.
func (s *Session) Claim(ctx context.Context, cluster string, shard int) (*Claim, error) {
	keys, err := ShardKeys(cluster, shard)
	if err != nil {
		return nil, err
	}
	select {
	case <-s.lost:
		return nil, fmt.Errorf("etcdlog: claim shard %d of %q: %w", shard, cluster, ErrSessionLost)
	default:
	}
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(keys.Owner), "=", 0)).
		Then(clientv3.OpPut(keys.Owner, s.name, clientv3.WithLease(s.lease))).
		Else(clientv3.OpGet(keys.Owner)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("etcdlog: claim shard %d of %q: %w", shard, cluster, err)
	}
	if !resp.Succeeded {
		owner := "?"
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			owner = string(kvs[0].Value)
		}
		return nil, fmt.Errorf("%w: shard %d of %q is held by %q", ErrOwned, shard, cluster, owner)
	}
	return &Claim{session: s, cluster: cluster, shard: shard, keys: keys, rev: resp.Header.Revision}, nil
}

// Keys returns the etcd keys of the claimed shard.
func (c *Claim) Keys() Keys { return c.keys }

// Shard returns the claimed shard's number.
func (c *Claim) Shard() int { return c.shard }

// Revision returns the revision at which the owner key was put: every write
// of the shard's log compares the owner key's ModRevision with it.
func (c *Claim) Revision() int64 { return c.rev }

// Session returns the session that made the claim.
func (c *Claim) Session() *Session { return c.session }

// ownerCmp is the fence of every write: the owner key is still the one this
// claim put.
func (c *Claim) ownerCmp() clientv3.Cmp {
	return clientv3.Compare(clientv3.ModRevision(c.keys.Owner), "=", c.rev)
}

// Check asks etcd (a linearizable read) whether the claim still holds, and
// returns an error wrapping declog.ErrFenced if not. An owner must check
// before answering anything by presumption (a transaction it has no record
// of is aborted): a former owner's memory is no evidence.
func (c *Claim) Check(ctx context.Context) error {
	select {
	case <-c.session.lost:
		return c.fenced(ErrSessionLost.Error())
	default:
	}
	resp, err := c.session.client.Get(ctx, c.keys.Owner)
	if err != nil {
		return fmt.Errorf("etcdlog: check ownership of shard %d: %w", c.shard, err)
	}
	return c.checkOwner(resp.Kvs)
}

// checkOwner returns a fenced error unless kvs (a read of the owner key)
// show this claim.
func (c *Claim) checkOwner(kvs []*mvccKV) error {
	if len(kvs) == 0 {
		return c.fenced("owner key gone (released, or its lease lapsed)")
	}
	if kvs[0].ModRevision != c.rev {
		return c.fenced(fmt.Sprintf("owner key now %q at revision %d, claimed at %d", kvs[0].Value, kvs[0].ModRevision, c.rev))
	}
	return nil
}

func (c *Claim) fenced(why string) error {
	return fmt.Errorf("%w (shard %d of %q: %s)", declog.ErrFenced, c.shard, c.cluster, why)
}

// Release gives the shard up (a planned hand-off): it deletes the owner key
// if the claim still holds, so that another process may claim the shard at
// once. Close the shard's log first, so that every record is durable. A
// claim already lost fails with an error wrapping declog.ErrFenced.
func (c *Claim) Release(ctx context.Context) error {
	resp, err := c.session.client.Txn(ctx).
		If(c.ownerCmp()).
		Then(clientv3.OpDelete(c.keys.Owner)).
		Commit()
	if err != nil {
		return fmt.Errorf("etcdlog: release shard %d: %w", c.shard, err)
	}
	if !resp.Succeeded {
		return c.fenced("released after it was lost")
	}
	return nil
}
