package etcdlog

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/internal/etcdtest"
)

// cluster is the 3-member etcd cluster of this test package: separate
// processes on loopback, started in TestMain and stopped after the tests.
// Tests that kill members start them again before they end.
var cluster *etcdtest.Cluster

func TestMain(m *testing.M) { etcdtest.Main(m, "etcdlog-test", 3, &cluster) }

// newClient returns a client of the test cluster, closed when t ends.
func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := cluster.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

var clusterNames atomic.Int64

// newClusterName returns a coordinator-cluster name no other test uses, so
// that tests sharing the etcd cluster share no keys.
func newClusterName(t testing.TB) string {
	return fmt.Sprintf("test%d-%d", time.Now().UnixNano()%1e9, clusterNames.Add(1))
}

// newSession returns a session of ttl on cli, closed when t ends.
func newSession(t testing.TB, cli *clientv3.Client, name string, ttl time.Duration) *Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := NewSession(ctx, cli, name, ttl)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Close(ctx)
	})
	return s
}

func mustClaim(t testing.TB, s *Session, name string, shard int) *Claim {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := s.Claim(ctx, name, shard)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustOpenLog(t testing.TB, opts Options) *Log {
	t.Helper()
	l, err := Open(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}
