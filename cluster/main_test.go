package cluster

import (
	"context"
	"fmt"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordtx/concord/internal/etcdtest"
)

// etcd is the 3-member etcd cluster of this test package: separate
// processes on loopback, started in TestMain and stopped after the tests.
var etcd *etcdtest.Cluster

func TestMain(m *testing.M) { etcdtest.Main(m, "cluster-test", 3, &etcd) }

func newClient(t testing.TB) *clientv3.Client {
	t.Helper()
	cli, err := etcd.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}

// newProxiedClient returns a client that reaches etcd through proxies,
// and the proxies: Cut cuts the client off from etcd (a process stopped or
// partitioned away).
func newProxiedClient(t testing.TB) (*clientv3.Client, []*etcdtest.Proxy) {
	t.Helper()
	var eps []string
	var proxies []*etcdtest.Proxy
	for _, m := range etcd.Members {
		u, err := url.Parse(m.ClientURL)
		if err != nil {
			t.Fatal(err)
		}
		p, err := etcdtest.NewProxy(u.Host)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		proxies = append(proxies, p)
		eps = append(eps, "http://"+p.Addr())
	}
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli, proxies
}

var names atomic.Int64

func newClusterName() string {
	return fmt.Sprintf("ctest%d-%d", time.Now().UnixNano()%1e9, names.Add(1))
}

// waitFor polls cond until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > d {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}
