package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestChaosFlagErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--seed", "minus"}, `--seed "minus" is not an unsigned integer`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--binary", "/nonexistent/concord", "--duration", "1s"}, "binary"},
		{[]string{"--binary", "/", "--duration", "1s"}, "not an executable file"},
		{[]string{"--rate", "0.0", "--binary", "/bin/sh", "--clients", "-3"}, "clients"},
		{[]string{"--duration", "banana"}, "invalid value"},
	}
	for _, c := range cases {
		var out, errb bytes.Buffer
		if code := run(append([]string{"chaos"}, c.args...), &out, &errb); code != chaosError {
			t.Errorf("%v: exit status %d, want %d; stderr %q", c.args, code, chaosError, errb.String())
			continue
		}
		if !strings.Contains(errb.String(), c.want) {
			t.Errorf("%v: stderr %q does not mention %q", c.args, errb.String(), c.want)
		}
	}
}

func TestChaosHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"chaos", "-h"}, &out, &errb); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	for _, w := range []string{"usage: concord chaos", "--duration", "--seed", "--binary", "--json"} {
		if !strings.Contains(errb.String(), w) {
			t.Errorf("help lacks %q", w)
		}
	}
}

// TestChaosJSONAgainstStandIn runs a two-second chaos run through the
// command against the chaos package's stand-in binary and checks the exit
// status and the JSON summary.
func TestChaosJSONAgainstStandIn(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("chaos runs need process groups and signals")
	}
	bin := filepath.Join(t.TempDir(), "fakeconcord")
	if out, err := exec.Command("go", "build", "-o", bin, "../../internal/chaos/testdata/fakeconcord").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	var out, errb bytes.Buffer
	code := run([]string{"chaos", "--binary", bin, "--duration", "2s", "--seed", "77", "--fault-every", "300ms", "--json", "--dir", t.TempDir()}, &out, &errb)
	if code != chaosPass {
		t.Fatalf("exit status %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	var sum struct {
		Seed         uint64   `json:"seed"`
		Transactions int      `json:"transactions"`
		KillsTotal   int      `json:"kills_total"`
		Violations   []string `json:"violations"`
		Pass         bool     `json:"pass"`
	}
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out.String())
	}
	if sum.Seed != 77 || !sum.Pass || len(sum.Violations) != 0 || sum.Transactions == 0 {
		t.Fatalf("summary %+v", sum)
	}
	if !strings.Contains(errb.String(), "chaos: seed 77") {
		t.Fatalf("no progress on stderr: %q", errb.String())
	}
}

func TestChaosLeavesNoDirectoryOnBadOptions(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	var out, errb bytes.Buffer
	if code := run([]string{"chaos", "--binary", "/nonexistent/concord"}, &out, &errb); code != chaosError {
		t.Fatalf("exit status %d", code)
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Fatalf("left behind in the temporary directory: %v", entries)
	}
}
