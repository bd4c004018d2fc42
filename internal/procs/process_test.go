package procs

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHelperProcess is not a test: it is the child the other tests start
// (this test binary, run again). It serves 200 on the address in
// PROCS_HELPER_LISTEN until SIGTERM, or exits at once with a message when
// PROCS_HELPER_FAIL is set.
func TestHelperProcess(t *testing.T) {
	addr := os.Getenv("PROCS_HELPER_LISTEN")
	if addr == "" {
		t.Skip("started only as a child process")
	}
	if msg := os.Getenv("PROCS_HELPER_FAIL"); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(3)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(4)
	}
	fmt.Println("serving")
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	select {} // until a signal ends the process
}

func helperSpec(t *testing.T, name string, env ...string) Spec {
	t.Helper()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{Name: name, Binary: os.Args[0], Args: []string{"-test.run=^TestHelperProcess$"},
		Env: append([]string{"PROCS_HELPER_LISTEN=" + addr}, env...), LogPath: filepath.Join(t.TempDir(), name+".log"),
		Health: "http://" + addr + "/"}
}

// A process starts, answers, and a graceful stop ends it and its group.
func TestStartHealthyStop(t *testing.T) {
	p, err := Start(helperSpec(t, "server"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(syscall.SIGKILL, 0)
	if err := p.WaitHealthy(context.Background(), nil, 20*time.Second); err != nil {
		t.Fatal(err)
	}
	if !p.Running() || p.ExitState() != nil {
		t.Fatal("a healthy process is reported not running")
	}
	p.Stop(syscall.SIGTERM, 10*time.Second)
	if p.Running() || p.ExitState() == nil {
		t.Fatal("still running after Stop")
	}
	if got := LogTail(p.spec.LogPath, 100); !strings.Contains(got, "serving") {
		t.Fatalf("log %q lacks the child's output", got)
	}
}

// A process that exits while starting is reported with the end of its log.
func TestExitWhileStarting(t *testing.T) {
	p, err := Start(helperSpec(t, "broken", "PROCS_HELPER_FAIL=cannot open the data directory"))
	if err != nil {
		t.Fatal(err)
	}
	err = p.WaitHealthy(context.Background(), nil, 20*time.Second)
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "cannot open the data directory") {
		t.Fatalf("WaitHealthy = %v; want ErrExited naming the child's message", err)
	}
}

func TestStartRefusesIncompleteSpec(t *testing.T) {
	if _, err := Start(Spec{Name: "x"}); err == nil {
		t.Fatal("a spec without binary and log path started")
	}
}

func TestLastLines(t *testing.T) {
	if got := LastLines("a\n\nb\nc\n", 2); got != "b | c" {
		t.Fatalf("LastLines = %q", got)
	}
}

// FreeAddr draws ports below the kernel's ephemeral range, where no "port 0"
// listener or outgoing connection can take them between the draw and the
// child's bind.
func TestFreeAddrAvoidsEphemeralPorts(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		addr, err := FreeAddr()
		if err != nil {
			t.Fatal(err)
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		if n >= low {
			t.Fatalf("FreeAddr gave %s, inside the ephemeral range from %d", addr, low)
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("FreeAddr gave %s, which cannot be bound: %v", addr, err)
		}
		ln.Close()
	}
}
