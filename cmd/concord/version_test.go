package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// fakeBuildInfo makes readBuildInfo return bi until the test ends.
func fakeBuildInfo(t *testing.T, bi *debug.BuildInfo) {
	old := readBuildInfo
	readBuildInfo = func() (*debug.BuildInfo, bool) { return bi, bi != nil }
	t.Cleanup(func() { readBuildInfo = old })
}

func TestVersionPrintsBuildInfo(t *testing.T) {
	fakeBuildInfo(t, &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/concordtx/concord", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-12-07T23:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	})
	for _, args := range [][]string{{"version"}, {"--version"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		line := out.String()
		for _, want := range []string{"v1.2.3", "commit 0123456789abcdef (dirty)", "go1.99.1"} {
			if !strings.Contains(line, want) {
				t.Errorf("%v printed %q, missing %q", args, line, want)
			}
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"version", "--json"}, &out, &errb); code != 0 {
		t.Fatalf("version --json: exit %d: %s", code, errb.String())
	}
	var v versionInfo
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("version --json printed %q: %v", out.String(), err)
	}
	if v.Module != "github.com/concordtx/concord" || v.Version != "v1.2.3" || v.Commit != "0123456789abcdef" ||
		!v.Dirty || v.GoVersion != "go1.99.1" || v.CommitAt != "2026-12-07T23:00:00Z" {
		t.Errorf("version --json = %+v", v)
	}
}

func TestVersionWithoutBuildInfo(t *testing.T) {
	fakeBuildInfo(t, nil)
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s := out.String(); !strings.HasPrefix(s, "concord unknown ") || strings.Contains(s, "commit") {
		t.Errorf("printed %q", s)
	}
}

// TestVersionOfBuiltBinary builds the binary from this checkout and checks
// that --version names the checkout's commit, as go build stamped it.
func TestVersionOfBuiltBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("skipping: not in a git checkout (git rev-parse HEAD: %v), so there is no commit to compare", err)
	}
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse --show-toplevel: %v", err)
	}
	// cmd/go stamps the commit only when the checkout's .git is a
	// directory: a linked worktree (.git is a file) builds unstamped.
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Skipf("skipping: %s/.git is not a directory (a git worktree?), and go build stamps no commit there", strings.TrimSpace(string(top)))
	}
	bin := filepath.Join(t.TempDir(), "concord")
	// -buildvcs=true overrides a GOFLAGS=-buildvcs=false in the environment.
	if out, err := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "--version", "--json").Output()
	if err != nil {
		t.Fatalf("concord --version --json: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("printed %q: %v", out, err)
	}
	if v.Commit != strings.TrimSpace(string(head)) {
		t.Errorf("commit %q, want HEAD %q", v.Commit, strings.TrimSpace(string(head)))
	}
	if v.Module != "github.com/concordtx/concord" || !strings.HasPrefix(v.GoVersion, "go1.") {
		t.Errorf("version = %+v", v)
	}
	status, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output()
	if err == nil && v.Dirty != (len(bytes.TrimSpace(status)) > 0) {
		t.Errorf("dirty = %v, but git status says %q", v.Dirty, status)
	}
}
