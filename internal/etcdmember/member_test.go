package etcdmember

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestBadFlags: bad flags exit with status 2 and a message naming them.
func TestBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "-bogus"},
		{[]string{"--listen-client-urls", "ftp://127.0.0.1:1"}, "--listen-client-urls"},
		{[]string{"--listen-peer-urls", "http://"}, "--listen-peer-urls"},
		{[]string{"--listen-client-urls", ""}, "--listen-client-urls is empty"},
		{[]string{"--initial-cluster-state", "old"}, "--initial-cluster-state"},
		{[]string{"--log-format", "xml"}, "--log-format"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		var stderr bytes.Buffer
		if code := Run(context.Background(), tc.args, &stderr); code != 2 {
			t.Errorf("%q: exit status %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%q: stderr %q does not name %q", tc.args, stderr.String(), tc.want)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the member's and the test's
// goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunStops: a one-member cluster serves, says so, and stops cleanly
// (status 0) when its context ends, as on SIGTERM.
func TestRunStops(t *testing.T) {
	var ports []int
	for range 2 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
		l.Close()
	}
	args := []string{
		"--name", "solo", "--data-dir", t.TempDir(),
		"--listen-client-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"--log-level", "error",
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- Run(ctx, args, &stderr) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(stderr.String(), "ready, serving clients") {
		select {
		case c := <-code:
			t.Fatalf("member exited with %d before it was ready: %s", c, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("member not ready after 60s: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond) // poll its output
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit status %d after a stop, want 0: %s", c, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("member did not stop within 30s")
	}
	if !strings.Contains(stderr.String(), "member solo stopped") {
		t.Fatalf("no stop line: %s", stderr.String())
	}
}
