//go:build linux

package chaos

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// signalWriter closes first when the first progress line is written.
type signalWriter struct {
	once  sync.Once
	first chan struct{}
	mu    sync.Mutex
	buf   bytes.Buffer
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if strings.Contains(string(p), "tx ") {
		w.once.Do(func() { close(w.first) })
	}
	return w.buf.Write(p)
}

// processesMentioning lists the pids whose command line contains s.
func processesMentioning(s string) []string {
	var pids []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

func TestCancelKillsEveryProcess(t *testing.T) {
	bin := buildFake(t)
	dir := t.TempDir()
	w := &signalWriter{first: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		sum *Summary
		err error
	}
	done := make(chan result, 1)
	go func() {
		sum, err := Run(ctx, Options{Binary: bin, Dir: dir, Seed: 9, Duration: time.Minute, FaultEvery: time.Hour,
			Progress: w, ProgressEvery: 500 * time.Millisecond})
		done <- result{sum, err}
	}()
	select {
	case <-w.first:
	case r := <-done:
		t.Fatalf("run ended early: %v", r.err)
	}
	if pids := processesMentioning(dir); len(pids) != 4 {
		t.Fatalf("%d processes running in %s, want 4 (pids %v)", len(pids), dir, pids)
	}
	cancel()
	r := <-done
	if r.err != nil || !r.sum.Interrupted || r.sum.Pass {
		t.Fatalf("cancelled run: err %v, summary %+v", r.err, r.sum)
	}
	if pids := processesMentioning(dir); len(pids) != 0 {
		t.Fatalf("processes left running after cancel: %v", pids)
	}
}
