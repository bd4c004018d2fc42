//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concordtx/concord/internal/failpoint"
)

// TestHelperChaosProcess is not a test: it is a concord process (this test
// binary, re-executed) that the failpoint tests below kill for real.
func TestHelperChaosProcess(t *testing.T) {
	args := os.Getenv("CONCORD_HELPER_CHAOS_ARGS")
	if args == "" {
		t.Skip("started only as a child process")
	}
	os.Exit(run(strings.Split(args, "\x1f"), os.Stdout, os.Stderr))
}

// fpChild is a concord process started by a test.
type fpChild struct {
	cmd    *exec.Cmd
	url    string
	mu     sync.Mutex
	stderr bytes.Buffer
}

func (c *fpChild) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.Write(p)
}

func (c *fpChild) errText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// startFPChild runs concord with args and the failpoints spec armed, and
// waits for its "serving on URL" line.
func startFPChild(t *testing.T, failpoints string, args ...string) *fpChild {
	t.Helper()
	c := &fpChild{cmd: exec.Command(os.Args[0], "-test.run=^TestHelperChaosProcess$")}
	c.cmd.Env = append(os.Environ(), "CONCORD_HELPER_CHAOS_ARGS="+strings.Join(args, "\x1f"), failpoint.EnvVar+"="+failpoints)
	c.cmd.Stderr = c
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill(); c.cmd.Wait() })
	urls := make(chan string, 1)
	go func() {
		re := regexp.MustCompile(`serving on (http://127\.0\.0\.1:\d+)`)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
			}
		}
		io.Copy(io.Discard, out)
	}()
	select {
	case c.url = <-urls:
	case <-time.After(20 * time.Second): // a real process: bound the wait
		t.Fatalf("%v did not start: %s", args, c.errText())
	}
	return c
}

// waitKilledAt waits for the child to die and checks that the failpoint
// name killed it with SIGKILL.
func (c *fpChild) waitKilledAt(t *testing.T, name string) {
	t.Helper()
	err := c.cmd.Wait()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child ended with %v, want killed at %s; stderr:\n%s", err, name, c.errText())
	}
	if ws := exit.Sys().(syscall.WaitStatus); !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want SIGKILL", ws)
	}
	if !strings.Contains(c.errText(), "failpoint fired: "+name) {
		t.Fatalf("stderr does not name %s:\n%s", name, c.errText())
	}
}

func fpPost(url, body string) (string, error) {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func fpReservationState(t *testing.T, base, id string) string {
	t.Helper()
	resp, err := http.Get(base + "/v1/reservations/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		State string `json:"state"`
	}
	if resp.StatusCode != http.StatusOK {
		return resp.Status
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.State
}

func fpParticipantArgs(dir string) []string {
	return []string{"participant", "--service", "flights", "--listen", "127.0.0.1:0", "--data", dir,
		"--coordinator", "http://127.0.0.1:1", "--inventory", "FL100=10", "--in-doubt-after", "1h"}
}

const fpPrepare = `{"coordinator":"http://127.0.0.1:1","transactions":[{"id":"fp-1","payload":{"sku":"FL100","quantity":2}}]}`

// A participant armed at participant.after-prepare-sync dies once its
// prepared state is durable and before it votes: the vote never arrives,
// and after a restart the reservation is still prepared.
func TestParticipantFailpointAfterPrepareSync(t *testing.T) {
	dir := t.TempDir()
	p := startFPChild(t, failpoint.ParticipantAfterPrepareSync+"=crash", fpParticipantArgs(dir)...)
	if body, err := fpPost(p.url+"/v1/prepare", fpPrepare); err == nil {
		t.Fatalf("a vote left a participant that died before voting: %s", body)
	}
	p.waitKilledAt(t, failpoint.ParticipantAfterPrepareSync)
	p = startFPChild(t, "", fpParticipantArgs(dir)...)
	if st := fpReservationState(t, p.url, "fp-1"); st != "prepared" {
		t.Fatalf("after the restart fp-1 is %q, want prepared (durable before the failpoint)", st)
	}
}

// A participant armed at participant.after-commit dies once the commit is
// durable and before it acknowledges: after a restart the reservation is
// committed and a repeated COMMIT is acknowledged.
func TestParticipantFailpointAfterCommit(t *testing.T) {
	dir := t.TempDir()
	p := startFPChild(t, failpoint.ParticipantAfterCommit+"=crash", fpParticipantArgs(dir)...)
	if body, err := fpPost(p.url+"/v1/prepare", fpPrepare); err != nil || !strings.Contains(body, `"yes"`) {
		t.Fatalf("prepare: %v %s", err, body)
	}
	if body, err := fpPost(p.url+"/v1/commit", `{"ids":["fp-1"]}`); err == nil {
		t.Fatalf("an acknowledgement left a participant that died before acknowledging: %s", body)
	}
	p.waitKilledAt(t, failpoint.ParticipantAfterCommit)
	p = startFPChild(t, "", fpParticipantArgs(dir)...)
	if st := fpReservationState(t, p.url, "fp-1"); st != "committed" {
		t.Fatalf("after the restart fp-1 is %q, want committed (durable before the failpoint)", st)
	}
	body, err := fpPost(p.url+"/v1/commit", `{"ids":["fp-1"]}`)
	if err != nil || !strings.Contains(body, `"acknowledged":["fp-1"]`) {
		t.Fatalf("repeated COMMIT: %v %s", err, body)
	}
}
