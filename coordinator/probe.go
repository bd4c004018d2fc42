package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/concordtx/concord/wire"
)

// Prober is implemented by a Transport that can check that a participant
// answers at all, apart from the protocol: HTTPTransport asks GET /healthz.
// The coordinator probes every Options.ProbeInterval when its Transport is
// a Prober.
type Prober interface {
	// Probe returns nil if participant answered in time and says it is
	// well, or an error saying what went wrong.
	Probe(ctx context.Context, participant string) error
}

var _ Prober = (*HTTPTransport)(nil)

// errNotProbed: the participant is reached in a way that has no health
// endpoint (in-process).
var errNotProbed = errors.New("no health endpoint to probe")

// Probe asks the participant's GET /healthz. Any answer below 500 means it
// is up: a participant built on the SDK alone may have no such endpoint and
// answer 404, which still shows it serves; a 5xx (a service not started)
// or no answer is a failure.
func (t *HTTPTransport) Probe(ctx context.Context, participant string) error {
	var base string
	var hc *http.Client
	switch pc := t.clients[participant].(type) {
	case *wire.ParticipantClient:
		base, hc = pc.BaseURL, pc.HTTP
	case *wire.DirectClient:
		// The direct client speaks the protocol's POSTs only.
		t.probeOnce.Do(func() { t.probeHTTP = wire.NewHTTPClient(0) })
		base, hc = t.urls[participant], t.probeHTTP
	default:
		return errNotProbed
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+wire.PathHealth, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		return fmt.Errorf("GET %s: %s", wire.PathHealth, resp.Status)
	}
	return nil
}

// startProbes schedules the first probe of every configured participant.
func (c *Coordinator) startProbes() {
	pr, ok := c.transport.(Prober)
	if !ok || c.opts.ProbeInterval <= 0 {
		return
	}
	for name := range c.opts.Participants {
		c.scheduleProbe(pr, name, c.opts.ProbeInterval)
	}
}

// scheduleProbe probes name after d, unless the coordinator is closing.
func (c *Coordinator) scheduleProbe(pr Prober, name string, d time.Duration) {
	p := c.participantMetrics(name)
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	if c.probesStopped {
		return
	}
	p.probeNext.Store(c.clock.Now().Add(d).UnixNano())
	if c.probeTimers == nil {
		c.probeTimers = map[string]Timer{}
	}
	c.probeTimers[name] = c.clock.AfterFunc(d, func() { c.probe(pr, name) })
}

// stopProbes cancels every scheduled probe; none is scheduled after.
func (c *Coordinator) stopProbes() {
	c.probeMu.Lock()
	defer c.probeMu.Unlock()
	c.probesStopped = true
	for _, t := range c.probeTimers {
		t.Stop()
	}
}

// probe probes name once, records what it saw and schedules the next one:
// after ProbeInterval if it answered, else after a wait that doubles with
// each failure in a row, up to ProbeMax.
func (c *Coordinator) probe(pr Prober, name string) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.ProbeTimeout)
	err := pr.Probe(ctx, name)
	cancel()
	if c.ctx.Err() != nil {
		return // closing
	}
	if errors.Is(err, errNotProbed) {
		return
	}
	p := c.participantMetrics(name)
	now := c.clock.Now()
	next := c.opts.ProbeInterval
	if err == nil {
		if n := p.probeFailures.Swap(0); n > 0 {
			p.logger.Info("participant answers health probes again", "participant", name, "failed_probes", n)
		}
		p.probeOK.Store(now.UnixNano())
	} else {
		msg := err.Error()
		p.probeErr.Store(&msg)
		p.probeErrAt.Store(now.UnixNano())
		n := p.probeFailures.Add(1)
		if n == 1 {
			p.logger.Warn("participant fails health probes", "participant", name, "err", msg)
		}
		for i := int64(0); i < n && next < c.opts.ProbeMax; i++ {
			next *= 2
		}
		next = min(next, c.opts.ProbeMax)
	}
	c.scheduleProbe(pr, name, next)
}
