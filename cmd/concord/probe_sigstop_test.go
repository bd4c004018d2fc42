//go:build unix

package main

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concordtx/concord/wire"
)

// A real participant process frozen with SIGSTOP shows as failing in the
// probe view with no transaction under way, and as ok again after SIGCONT.
func TestProbesSeeASIGSTOPedParticipant(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	proc, purl := startParticipantProcess(t, "--service", "cars", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, errb := newLineSignal(), newLineSignal()
	exit := make(chan int, 1)
	go func() {
		exit <- runCoordinator(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--probe-interval", "50ms", "--participant", "cars=" + purl}, out, errb)
	}()
	defer func() { cancel(); <-exit }()
	line := <-waitLineAsync(t, out, "serving on http://")
	if line == "" {
		t.Fatalf("no serving line; stderr %q", errb.String())
	}
	url := strings.Fields(line[strings.Index(line, "serving on ")+len("serving on "):])[0]
	probe := func() wire.ParticipantHealth {
		var o wire.Overview
		if err := wire.Do(ctx, http.DefaultClient, http.MethodGet, url+wire.PathOverview, nil, &o); err != nil {
			t.Fatal(err)
		}
		return o.Participants[0]
	}
	await := func(what string, cond func(wire.ParticipantHealth) bool) wire.ParticipantHealth {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			h := probe()
			if cond(h) {
				return h
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: never; last %+v", what, h)
			}
			time.Sleep(10 * time.Millisecond) // real processes: nothing to wait on but what the coordinator reports
		}
	}
	await("probe ok", func(h wire.ParticipantHealth) bool { return h.Probe == "ok" })
	if err := proc.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	stopped := true
	defer func() {
		if stopped {
			proc.Process.Signal(syscall.SIGCONT)
		}
	}()
	h := await("probe failing while stopped", func(h wire.ParticipantHealth) bool { return h.Probe == "failing" })
	if h.State != "idle" || h.ProbeLastError == "" {
		t.Errorf("while stopped: %+v (traffic saw nothing; the probe says why)", h)
	}
	proc.Process.Signal(syscall.SIGCONT)
	stopped = false
	await("probe ok after SIGCONT", func(h wire.ParticipantHealth) bool { return h.Probe == "ok" && h.ProbeFailures == 0 })
}
