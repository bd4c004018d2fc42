// Package etcdtest starts real etcd clusters for tests: every member a
// separate process on loopback, the test binary itself re-executed to run
// the member exactly as `concord etcd` does (package internal/etcdmember).
// Nothing is mocked: members can be killed with SIGKILL, stopped and
// restarted on their data directories.
//
// A test package that uses it calls MaybeMember first thing in its
// TestMain: when the binary was started as a member, it runs the member and
// exits.
package etcdtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/concordtx/concord/internal/etcdmember"
)

// envMember marks a re-executed test binary that is to run an etcd member
// with the arguments that follow.
const envMember = "CONCORD_ETCDTEST_MEMBER"

// readyTimeout bounds the wait for a cluster to serve.
const readyTimeout = 60 * time.Second

// MaybeMember runs an etcd member and exits if the binary was started as
// one; else it returns at once.
func MaybeMember() {
	if os.Getenv(envMember) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := etcdmember.Run(ctx, os.Args[1:], os.Stderr)
		stop()
		os.Exit(code)
	}
}

// Cluster is a running etcd cluster of member processes.
type Cluster struct {
	Members []*Member
	dir     string
}

// Member is one member process.
type Member struct {
	Name      string
	ClientURL string
	PeerURL   string
	DataDir   string
	LogPath   string
	args      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	exit chan struct{} // closed when the process has exited
}

// Start starts an n-member cluster in dir (its members' data and logs) and
// returns once every member serves; on error it stops what it started.
func Start(dir string, n int) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: fmt.Sprintf("http://127.0.0.1:%d", ports[2*i]),
			PeerURL:   fmt.Sprintf("http://127.0.0.1:%d", ports[2*i+1]),
		}
		m.DataDir = filepath.Join(dir, m.Name)
		m.LogPath = filepath.Join(dir, m.Name+".log")
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.PeerURL)
	}
	for _, m := range c.Members {
		m.args = []string{
			"--name", m.Name, "--data-dir", m.DataDir,
			"--listen-client-urls", m.ClientURL, "--advertise-client-urls", m.ClientURL,
			"--listen-peer-urls", m.PeerURL, "--initial-advertise-peer-urls", m.PeerURL,
			"--initial-cluster", strings.Join(initial, ","), "--initial-cluster-state", "new",
			"--initial-cluster-token", filepath.Base(dir),
			"--log-level", "warn",
		}
		if err := m.start(); err != nil {
			c.Stop()
			return nil, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	for _, m := range c.Members {
		if err := m.WaitReady(ctx); err != nil {
			c.Stop()
			return nil, err
		}
	}
	return c, nil
}

// freePorts returns n distinct loopback ports free at the time of the call.
func freePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("etcdtest: free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func (m *Member) start() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	logf, err := os.OpenFile(m.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(exe, m.args...)
	cmd.Env = append(os.Environ(), envMember+"=1")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("etcdtest: start member %s: %w", m.Name, err)
	}
	exit := make(chan struct{})
	go func() {
		cmd.Wait()
		logf.Close()
		close(exit)
	}()
	m.mu.Lock()
	m.cmd, m.exit = cmd, exit
	m.mu.Unlock()
	return nil
}

// WaitReady returns once the member answers a status request.
func (m *Member) WaitReady(ctx context.Context) error {
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer cli.Close()
	for {
		sctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := cli.Status(sctx, m.ClientURL)
		cancel()
		if err == nil && st.Leader != 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("etcdtest: member %s not ready (log %s): %v", m.Name, m.LogPath, err)
		case <-m.exited():
			return fmt.Errorf("etcdtest: member %s exited (log %s)", m.Name, m.LogPath)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (m *Member) exited() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.exit
}

// Kill kills the member with SIGKILL and waits for the process to end.
func (m *Member) Kill() {
	m.signal(syscall.SIGKILL)
}

// Terminate stops the member with SIGTERM and waits; it returns the
// process's error (nil for exit status 0).
func (m *Member) Terminate() error {
	return m.signal(syscall.SIGTERM)
}

func (m *Member) signal(sig syscall.Signal) error {
	m.mu.Lock()
	cmd, exit := m.cmd, m.exit
	m.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exit:
		return nil
	default:
	}
	cmd.Process.Signal(sig)
	<-exit
	if cmd.ProcessState.Success() {
		return nil
	}
	return errors.New(cmd.ProcessState.String())
}

// Restart starts a stopped member again on its data directory.
func (m *Member) Restart() error {
	return m.start()
}

// Running reports whether the member's process runs.
func (m *Member) Running() bool {
	select {
	case <-m.exited():
		return false
	default:
		return true
	}
}

// Endpoints returns the client URLs of every member.
func (c *Cluster) Endpoints() []string {
	var eps []string
	for _, m := range c.Members {
		eps = append(eps, m.ClientURL)
	}
	return eps
}

// Client returns a client of the whole cluster.
func (c *Cluster) Client() (*clientv3.Client, error) {
	return clientv3.New(clientv3.Config{
		Endpoints:   c.Endpoints(),
		DialTimeout: 2 * time.Second,
		Logger:      zap.NewNop(),
	})
}

// Leader returns the member that leads now, as a running member sees it.
func (c *Cluster) Leader(ctx context.Context) (*Member, error) {
	for _, m := range c.Members {
		if !m.Running() {
			continue
		}
		cli, err := clientv3.New(clientv3.Config{Endpoints: []string{m.ClientURL}, DialTimeout: time.Second, Logger: zap.NewNop()})
		if err != nil {
			continue
		}
		st, err := cli.Status(ctx, m.ClientURL)
		if err != nil {
			cli.Close()
			continue
		}
		ms, err := cli.MemberList(ctx)
		cli.Close()
		if err != nil {
			continue
		}
		for _, mm := range ms.Members {
			if mm.ID == st.Leader {
				for _, cm := range c.Members {
					if cm.Name == mm.Name {
						return cm, nil
					}
				}
			}
		}
	}
	return nil, errors.New("etcdtest: no leader found")
}

// Stop terminates every member with SIGTERM and returns the first failure
// to stop cleanly.
func (c *Cluster) Stop() error {
	var first error
	for _, m := range c.Members {
		if err := m.Terminate(); err != nil && first == nil {
			first = fmt.Errorf("etcdtest: member %s: %v (log %s)", m.Name, err, m.LogPath)
		}
	}
	return first
}
