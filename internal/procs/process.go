package procs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrExited is returned by WaitHealthy when the process exits before it
// answers.
var ErrExited = errors.New("process exited")

// Spec describes one child process.
type Spec struct {
	// Name labels the process in errors ("coordinator", "flights", ...).
	Name string
	// Binary is the executable; Args follow it.
	Binary string
	Args   []string
	// Env is added to the parent's environment.
	Env []string
	// LogPath receives the child's stdout and stderr, appended; required.
	LogPath string
	// Health is a URL that answers 200 once the process serves.
	Health string
}

// Process is one running child. Its methods are safe for concurrent use.
type Process struct {
	spec Spec

	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

// Start launches spec's process in its own process group (killed with the
// parent on Linux).
func Start(spec Spec) (*Process, error) {
	if spec.Binary == "" || spec.LogPath == "" {
		return nil, fmt.Errorf("start %s: binary and log path are required", spec.Name)
	}
	logf, err := os.OpenFile(spec.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(spec.Binary, spec.Args...)
	cmd.Env = append(os.Environ(), spec.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = SysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	p := &Process{spec: spec, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		KillGroup(cmd.Process.Pid) // whatever the child left in its group goes too
		p.mu.Lock()
		p.state = cmd.ProcessState
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Name returns the spec's name.
func (p *Process) Name() string { return p.spec.Name }

// Pid returns the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Running reports whether the process is alive.
func (p *Process) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// WaitHealthy polls the health URL until it answers 200, the process exits
// (ErrExited, with the end of its log), ctx ends or timeout passes.
func (p *Process) WaitHealthy(ctx context.Context, hc *http.Client, timeout time.Duration) error {
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	deadline := time.Now().Add(timeout)
	var last error
	for {
		if !p.Running() {
			return fmt.Errorf("%s: %w while starting: %s", p.spec.Name, ErrExited, LastLines(LogTail(p.spec.LogPath, 2048), 5))
		}
		if last = get(ctx, hc, p.spec.Health); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %v: %w", p.spec.Name, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.done:
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// Stop sends sig to the process group (SIGTERM for a graceful stop,
// escalated to SIGKILL after grace; SIGKILL at once for a crash) and waits
// for the process to exit.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) {
	if !p.Running() {
		return
	}
	SignalGroup(p.Pid(), sig)
	if sig != syscall.SIGKILL {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-p.done:
			return
		case <-t.C:
			SignalGroup(p.Pid(), syscall.SIGKILL)
		}
	}
	<-p.done
}

// ExitState returns how the process ended, or nil while it runs.
func (p *Process) ExitState() *os.ProcessState {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.state
}

// FreeAddr returns 127.0.0.1:port for a loopback port that is free now. The
// port is released before the child that will use it starts, so another
// program could take it in between (start-up then reports the address in
// use). To make that unlikely it is drawn at random from below the kernel's
// ephemeral range: the ports the kernel hands to every "port 0" listener
// and every outgoing connection on the machine come from that range, so
// they never collide with one drawn here.
func FreeAddr() (string, error) {
	lo, hi := 20000, ephemeralLow()
	if hi-lo >= 1000 {
		for range 64 {
			addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(lo+rand.IntN(hi-lo)))
			if ln, err := net.Listen("tcp", addr); err == nil {
				ln.Close()
				return addr, nil
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default where it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 || n > 65535 {
		return 32768
	}
	return n
}

// LogTail returns up to n bytes from the end of a file.
func LogTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return ""
	}
	return string(b)
}

// LastLines returns the last n non-empty lines of s, joined by " | ".
func LastLines(s string, n int) string {
	var lines []string
	for _, l := range strings.Split(s, "\n") {
		if t := strings.TrimSpace(l); t != "" {
			lines = append(lines, t)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
