package coordinator_test

import (
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wire"
)

func healthOf(t *testing.T, e *env, name string) wire.ParticipantHealth {
	t.Helper()
	for _, h := range e.c.Overview().Participants {
		if h.Name == name {
			return h
		}
	}
	t.Fatalf("no health for %s", name)
	return wire.ParticipantHealth{}
}

// A participant that stops answering (frozen, as by SIGSTOP) shows as
// failing from the probes alone, with no transaction to notice it; its
// probes back off, doubling up to ProbeMax; once it answers again it shows
// ok at the next probe. The traffic view stays as traffic left it.
func TestProbesSeeAFrozenParticipantAndItsReturn(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.ProbeInterval = time.Second
	e.opts.ProbeTimeout = 200 * time.Millisecond // a real HTTP request: how long a frozen one is waited for
	e.opts.ProbeMax = 4 * time.Second
	e.parts["hotels"].SetPathMode(wire.PathHealth, testutil.Silent)
	e.start()

	if h := healthOf(t, e, "hotels"); h.Probe != "waiting" || !h.NextProbe.Equal(epoch.Add(time.Second)) {
		t.Fatalf("before any probe: %+v", h)
	}
	next := func(name string) time.Duration { return healthOf(t, e, name).NextProbe.Sub(e.clock.Now()) }
	e.clock.Advance(time.Second) // the probes at 1s run in this call
	if h := healthOf(t, e, "flights"); h.Probe != "ok" || !h.ProbeLastOK.Equal(epoch.Add(time.Second)) || next("flights") != time.Second {
		t.Errorf("flights after one probe: %+v", h)
	}
	h := healthOf(t, e, "hotels")
	if h.Probe != "failing" || h.ProbeFailures != 1 || h.ProbeLastError == "" || next("hotels") != 2*time.Second {
		t.Fatalf("frozen hotels after one probe: %+v (next in %v)", h, next("hotels"))
	}
	if h.State != "idle" || h.Requests != 0 {
		t.Errorf("the traffic view moved without traffic: %+v", h)
	}
	for i, want := range []time.Duration{4 * time.Second, 4 * time.Second} { // doubled, then capped at ProbeMax
		e.clock.Advance(next("hotels"))
		if h := healthOf(t, e, "hotels"); h.ProbeFailures != int64(i+2) || next("hotels") != want {
			t.Fatalf("after failure %d: %+v, next in %v, want %v", i+2, h, next("hotels"), want)
		}
	}

	e.parts["hotels"].SetPathMode(wire.PathHealth, testutil.Normal) // it thaws
	e.clock.Advance(next("hotels"))
	h = healthOf(t, e, "hotels")
	if h.Probe != "ok" || h.ProbeFailures != 0 || !h.ProbeLastOK.Equal(e.clock.Now()) || next("hotels") != time.Second {
		t.Fatalf("hotels back: %+v, next in %v", h, next("hotels"))
	}
	if !strings.Contains(h.ProbeLastError, "context deadline exceeded") || !h.ProbeLastErrorAt.Before(h.ProbeLastOK) {
		t.Errorf("the last failure is kept, older than the success: %+v", h)
	}
}

// Without ProbeInterval nothing is probed, and the overview says so.
func TestProbesOffByDefault(t *testing.T) {
	e := newEnv(t, "flights")
	e.start()
	e.clock.Advance(time.Hour)
	if h := healthOf(t, e, "flights"); h.Probe != "off" || !h.ProbeLastOK.IsZero() || !h.NextProbe.IsZero() {
		t.Errorf("%+v", h)
	}
}
