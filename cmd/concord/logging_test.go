package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord/internal/testutil"
)

// jsonLines parses every line of out as a JSON object, failing the test on
// one that is not, and returns them.
func jsonLines(t *testing.T, what, out string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("%s: a line that is not JSON: %q", what, l)
			continue
		}
		if m["msg"] == nil || m["level"] == nil || m["time"] == nil {
			t.Errorf("%s: a JSON line without time, level and msg: %q", what, l)
		}
		lines = append(lines, m)
	}
	return lines
}

// findLine is the first line whose level is level and whose msg contains
// msg, or nil.
func findLine(lines []map[string]any, level, msg string) map[string]any {
	for _, l := range lines {
		if l["level"] == level && strings.Contains(l["msg"].(string), msg) {
			return l
		}
	}
	return nil
}

// With --log-format json the coordinator's start, warning, log and shutdown
// lines are all JSON, on stdout and stderr alike.
func TestCoordinatorJSONLinesOnly(t *testing.T) {
	flights := testutil.NewParticipant(t, "flights")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := newLineSignal(), newLineSignal()
	exit := make(chan int, 1)
	go func() {
		exit <- runCoordinator(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json",
			"--log-level", "debug", "--participant", "flights=" + flights.URL}, out, errb)
	}()
	line := <-waitLineAsync(t, out, "serving on http://")
	if line == "" {
		t.Fatalf("no serving line; stdout %q stderr %q", out.String(), errb.String())
	}
	var serving map[string]any
	if err := json.Unmarshal([]byte(line), &serving); err != nil {
		t.Fatalf("serving line %q: %v", line, err)
	}
	url, _ := serving["url"].(string)
	if code, stdout, stderr := runCmd("book", "--coordinator", url, "--flight", "FL100", "--id", "json-trip"); code != 0 {
		t.Fatalf("book: exit %d: %s %s", code, stdout, stderr)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	stdout := jsonLines(t, "stdout", out.String())
	stderr := jsonLines(t, "stderr", errb.String())
	for _, want := range []struct {
		lines      []map[string]any
		level, msg string
	}{
		{stdout, "INFO", "coordinator serving on"},
		{stdout, "INFO", "console at"},
		{stdout, "INFO", "coordinator shutting down"},
		{stdout, "INFO", "coordinator stopped"},
		{stderr, "WARN", "serves plain HTTP"},
	} {
		if findLine(want.lines, want.level, want.msg) == nil {
			t.Errorf("no %s line %q in\nstdout %s\nstderr %s", want.level, want.msg, out.String(), errb.String())
		}
	}
	if len(stderr) < 2 {
		t.Errorf("want the warning and the debug log on stderr, got %q", errb.String())
	}
}

// A coordinator that cannot start says why in JSON too.
func TestCoordinatorJSONErrorLine(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(blocker, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stderr := coordinatorExit(t, "--data", blocker, "--participant", "flights=http://127.0.0.1:1",
		"--listen", "127.0.0.1:0", "--log-format", "json")
	lines := jsonLines(t, "stderr", stderr)
	if code != 1 || findLine(lines, "ERROR", blocker) == nil {
		t.Errorf("exit %d, stderr %q; want one JSON error naming %s", code, stderr, blocker)
	}
	// A usage error found after the format is known: JSON as well.
	code, stderr = coordinatorExit(t, "--data", t.TempDir(), "--participant", "flights=http://127.0.0.1:1",
		"--log-format", "json", "--client-tokens", "tokens.txt")
	if lines := jsonLines(t, "stderr", stderr); code != 2 || findLine(lines, "ERROR", "client-tokens") == nil {
		t.Errorf("exit %d, stderr %q; want a JSON usage error about --client-tokens", code, stderr)
	}
}

// The same for a participant: start, warning, shutdown and failure.
func TestParticipantJSONLinesOnly(t *testing.T) {
	_, stop, out, errb := startParticipantCmd(t, "--service", "cars", "--listen", "127.0.0.1:0", "--data", t.TempDir(), "--log-format", "json")
	if code := stop(); code != 0 {
		t.Fatalf("exit %d; stderr %q", code, errb.String())
	}
	stdout := jsonLines(t, "stdout", out.String())
	stderr := jsonLines(t, "stderr", errb.String())
	serving := findLine(stdout, "INFO", "cars serving on http://")
	if serving == nil || serving["service"] != "cars" || !strings.HasPrefix(serving["url"].(string), "http://127.0.0.1:") {
		t.Errorf("serving line %v in %q", serving, out.String())
	}
	for _, want := range []struct {
		lines      []map[string]any
		level, msg string
	}{
		{stdout, "INFO", "cars shutting down"},
		{stdout, "INFO", "cars stopped"},
		{stderr, "WARN", "serves plain HTTP"},
	} {
		if findLine(want.lines, want.level, want.msg) == nil {
			t.Errorf("no %s line %q in\nstdout %s\nstderr %s", want.level, want.msg, out.String(), errb.String())
		}
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := writeTestFile(file); err != nil {
		t.Fatal(err)
	}
	var o, e bytes.Buffer
	code := runParticipant(t.Context(), []string{"--service", "cars", "--listen", "127.0.0.1:0", "--data", file, "--log-format", "json"}, &o, &e)
	if lines := jsonLines(t, "stderr", e.String()); code != 1 || findLine(lines, "ERROR", file) == nil {
		t.Errorf("data dir is a file: exit %d, stderr %q", code, e.String())
	}
}
