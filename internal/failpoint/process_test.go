//go:build unix

package failpoint

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// childEnv makes the test binary act as a process with failpoints: it hits
// ParticipantAfterCommit five times, printing after each hit.
const childEnv = "FAILPOINT_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		for i := 1; i <= 5; i++ {
			Hit(ParticipantAfterCommit)
			fmt.Printf("survived hit %d\n", i)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(t *testing.T, env ...string) (stdout, stderr string, err error) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.String(), errb.String(), err
}

func TestCrashKillsTheProcessWithSIGKILL(t *testing.T) {
	stdout, stderr, err := runChild(t, EnvVar+"="+ParticipantAfterCommit+"=crash@3")
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("child did not fail: %v\nstdout:\n%s", err, stdout)
	}
	ws := exit.Sys().(syscall.WaitStatus)
	if !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", ws)
	}
	if want := "survived hit 1\nsurvived hit 2\n"; stdout != want {
		t.Fatalf("child stdout %q, want %q (dead at the 3rd hit)", stdout, want)
	}
	name, ok := ParseFired(stderr)
	if !ok || name != ParticipantAfterCommit {
		t.Fatalf("child stderr %q does not name the failpoint", stderr)
	}
}

func TestUnarmedChildRunsToTheEnd(t *testing.T) {
	stdout, _, err := runChild(t, EnvVar+"="+ParticipantAfterPrepareSync+"=crash")
	if err != nil || strings.Count(stdout, "survived") != 5 {
		t.Fatalf("child with another failpoint armed: %v, stdout %q", err, stdout)
	}
}

func TestBadEnvironmentRefusesToStart(t *testing.T) {
	cases := []struct {
		env     []string
		mention string
	}{
		{[]string{EnvVar + "=participant.after-lunch=crash"}, "participant.after-lunch"},
		{[]string{EnvVar + "=participant.after-commit=boom"}, "boom"},
		{[]string{EnvVar + "=participant.after-commit=crash%50", SeedEnvVar + "=minus-one"}, SeedEnvVar},
	}
	for _, c := range cases {
		stdout, stderr, err := runChild(t, c.env...)
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Errorf("%v: child ended with %v, want exit status 2", c.env, err)
			continue
		}
		if stdout != "" || !strings.Contains(stderr, "refusing to start") || !strings.Contains(stderr, c.mention) {
			t.Errorf("%v: stdout %q, stderr %q (want a refusal naming %q)", c.env, stdout, stderr, c.mention)
		}
	}
}
