package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/failpoint"
)

// process is one managed child process (coordinator or service) that the
// runner starts, kills and restarts on the same data directory.
type process struct {
	name    string   // "coordinator", "flights", ...
	role    string   // "coordinator" or "participant": the failpoint prefix
	binary  string   // the concord executable
	args    []string // after the binary
	logPath string   // stdout and stderr of every incarnation, appended
	health  string   // URL answering 200 once the process serves

	mu       sync.Mutex
	cmd      *exec.Cmd
	starts   int              // incarnations so far
	armed    []failpoint.Term // failpoints of the running incarnation
	stopping bool             // the runner is stopping the running incarnation
	done     chan struct{}    // closed when the running incarnation has exited
	state    *os.ProcessState // how the last incarnation ended
}

// exit reports an incarnation the runner did not stop.
type exit struct {
	p     *process
	armed []failpoint.Term
	state *os.ProcessState
	fired string // the failpoint that killed it, if one did
	tail  string // the end of its log
}

// running reports whether an incarnation is alive.
func (p *process) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// start launches a new incarnation with the given failpoints armed. An exit
// the runner did not ask for is sent on exits.
func (p *process) start(armed []failpoint.Term, seed uint64, exits chan<- exit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return fmt.Errorf("start %s: already running", p.name)
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	defer logf.Close() // the child holds its own descriptor
	env := withoutFailpoints(os.Environ())
	if len(armed) > 0 {
		env = append(env, failpoint.EnvVar+"="+failpoint.Format(armed),
			fmt.Sprintf("%s=%d", failpoint.SeedEnvVar, seed))
	}
	p.starts++
	fmt.Fprintf(logf, "=== chaos: start #%d of %s at %s, failpoints: %s\n",
		p.starts, p.name, time.Now().UTC().Format(time.RFC3339Nano), describeTerms(armed))
	cmd := exec.Command(p.binary, p.args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	done := make(chan struct{})
	p.cmd, p.armed, p.stopping, p.done, p.state = cmd, armed, false, done, nil
	go p.wait(cmd, done, armed, exits)
	return nil
}

func (p *process) wait(cmd *exec.Cmd, done chan struct{}, armed []failpoint.Term, exits chan<- exit) {
	_ = cmd.Wait()
	// Whatever the child left in its group (it starts none) goes too.
	killGroup(cmd.Process.Pid)
	p.mu.Lock()
	p.state = cmd.ProcessState
	stopping := p.stopping
	close(done)
	p.mu.Unlock()
	if stopping {
		return
	}
	tail := logTail(p.logPath, 4096)
	e := exit{p: p, armed: armed, state: cmd.ProcessState, tail: tail}
	for _, line := range strings.Split(tail, "\n") {
		if name, ok := failpoint.ParseFired(line); ok {
			e.fired = name
		}
	}
	exits <- e
}

// stop ends the running incarnation with sig (SIGKILL for a crash, SIGTERM
// for a graceful stop, escalated to SIGKILL after grace) and waits for it.
// It reports false if nothing was running.
func (p *process) stop(sig syscall.Signal, grace time.Duration) bool {
	p.mu.Lock()
	if p.cmd == nil || isClosed(p.done) {
		p.mu.Unlock()
		return false
	}
	p.stopping = true
	pid, done := p.cmd.Process.Pid, p.done
	p.mu.Unlock()
	signalGroup(pid, sig)
	if sig != syscall.SIGKILL {
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-done:
			return true
		case <-t.C:
			signalGroup(pid, syscall.SIGKILL)
		}
	}
	<-done
	return true
}

// waitHealthy polls the process's health URL until it answers 200, the
// process exits or the deadline passes.
func (p *process) waitHealthy(ctx context.Context, get func(url string) error, deadline time.Time) error {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	var last error
	for {
		if isClosed(done) {
			return fmt.Errorf("%s exited while starting: %s", p.name, lastLines(logTail(p.logPath, 2048), 5))
		}
		if last = get(p.health); last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy in time: %w", p.name, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func withoutFailpoints(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if strings.HasPrefix(kv, failpoint.EnvVar+"=") || strings.HasPrefix(kv, failpoint.SeedEnvVar+"=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}

func describeTerms(terms []failpoint.Term) string {
	if len(terms) == 0 {
		return "none"
	}
	return failpoint.Format(terms)
}
