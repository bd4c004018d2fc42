package faultproxy

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards HTTP/1.1 requests from its listener to one upstream,
// applying the current Faults to each. It is safe for concurrent use.
type Proxy struct {
	opts     Options
	upstream *url.URL
	ln       net.Listener
	client   *http.Client
	ctx      context.Context // cancelled by Close
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu     sync.Mutex // guards faults, healed, conns, rng
	faults Faults
	healed chan struct{} // closed when the current partition heals
	conns  map[net.Conn]struct{}
	rng    *rand.Rand

	stats struct {
		requests, forwarded, dropped, delayed, duplicated,
		resetsBefore, resetsAfter, upstreamErrors atomic.Uint64
	}
}

// New starts a proxy listening on opts.Listen.
func New(opts Options) (*Proxy, error) {
	up, err := opts.validate()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		opts:     opts,
		upstream: up,
		ln:       ln,
		ctx:      ctx,
		cancel:   cancel,
		conns:    map[net.Conn]struct{}{},
		healed:   make(chan struct{}),
		rng:      rand.New(rand.NewPCG(opts.Seed, 0x9e3779b97f4a7c15)),
		client: &http.Client{
			Timeout: opts.Timeout,
			Transport: &http.Transport{
				Proxy:               nil,
				MaxIdleConnsPerHost: 64,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	close(p.healed)
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address the proxy listens on.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is the base URL clients use instead of the upstream's.
func (p *Proxy) URL() string { return "http://" + p.Addr() }

// SetFaults replaces the faults applied from now on. Ending a partition
// releases (and resets) the requests it held.
func (p *Proxy) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case f.Partitioned && !p.faults.Partitioned:
		p.healed = make(chan struct{})
	case !f.Partitioned && p.faults.Partitioned:
		close(p.healed)
	}
	p.faults = f
	return nil
}

// Heal stops every fault.
func (p *Proxy) Heal() { _ = p.SetFaults(Faults{}) }

// Faults returns the faults in force.
func (p *Proxy) Faults() Faults {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults
}

// Stats returns the counters so far.
func (p *Proxy) Stats() Stats {
	s := &p.stats
	return Stats{
		Requests: s.requests.Load(), Forwarded: s.forwarded.Load(), Dropped: s.dropped.Load(),
		Delayed: s.delayed.Load(), Duplicated: s.duplicated.Load(), ResetsBefore: s.resetsBefore.Load(),
		ResetsAfter: s.resetsAfter.Load(), UpstreamErrors: s.upstreamErrors.Load(),
	}
}

// Close stops listening, resets every client connection and waits for the
// proxy's goroutines to end.
func (p *Proxy) Close() error {
	p.cancel()
	err := p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		reset(c)
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.client.CloseIdleConnections()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			reset(c)
			return
		}
		p.conns[c] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(1)
		go p.serve(c)
	}
}

// decision is what happens to one request, drawn when it arrives.
type decision struct {
	partitioned          bool
	healed               <-chan struct{}
	delay                time.Duration
	duplicate            bool
	replayDelay          time.Duration
	resetBefore, resetAt bool
}

func (p *Proxy) decide() decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	f := p.faults
	d := decision{partitioned: f.Partitioned, healed: p.healed}
	if f.DelayMax > 0 {
		d.delay = f.DelayMin + time.Duration(p.rng.Int64N(int64(f.DelayMax-f.DelayMin)+1))
	}
	d.resetBefore = p.rng.Float64() < f.ResetBefore
	d.duplicate = p.rng.Float64() < f.Duplicate
	if f.ReplayDelayMax > 0 {
		d.replayDelay = time.Duration(p.rng.Int64N(int64(f.ReplayDelayMax) + 1))
	}
	d.resetAt = p.rng.Float64() < f.ResetAfter
	return d
}

func (p *Proxy) partitioned() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.faults.Partitioned
}

// serve handles one client connection, one request at a time.
func (p *Proxy) serve(c net.Conn) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.conns, c)
		p.mu.Unlock()
		c.Close()
	}()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := readBounded(req.Body, p.opts.MaxBody)
		req.Body.Close()
		if err != nil {
			reset(c)
			return
		}
		p.stats.requests.Add(1)
		if !p.handle(c, req, body) {
			return
		}
	}
}

// handle applies the faults to one request; false means the connection is
// finished.
func (p *Proxy) handle(c net.Conn, req *http.Request, body []byte) bool {
	d := p.decide()
	if d.partitioned {
		p.stats.dropped.Add(1)
		select {
		case <-d.healed:
		case <-p.ctx.Done():
		}
		reset(c)
		return false
	}
	if d.resetBefore {
		p.stats.resetsBefore.Add(1)
		reset(c)
		return false
	}
	if d.delay > 0 {
		p.stats.delayed.Add(1)
		if !p.wait(d.delay) {
			reset(c)
			return false
		}
	}
	resp, respBody, err := p.forward(req, body)
	if d.duplicate {
		p.stats.duplicated.Add(1)
		p.wg.Add(1)
		go p.replay(req, body, d.replayDelay)
	}
	if err != nil {
		p.stats.upstreamErrors.Add(1)
		reset(c)
		return false
	}
	if d.resetAt || p.partitioned() {
		p.stats.resetsAfter.Add(1)
		reset(c)
		return false
	}
	p.stats.forwarded.Add(1)
	out := &http.Response{
		StatusCode:    resp.StatusCode,
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        resp.Header,
		Body:          io.NopCloser(bytes.NewReader(respBody)),
		ContentLength: int64(len(respBody)),
		Close:         req.Close,
		Request:       req,
	}
	removeHopHeaders(out.Header)
	bw := bufio.NewWriter(c)
	if err := out.Write(bw); err != nil {
		return false
	}
	if err := bw.Flush(); err != nil {
		return false
	}
	return !req.Close
}

// forward sends one copy of the request upstream and reads the whole answer.
func (p *Proxy) forward(in *http.Request, body []byte) (*http.Response, []byte, error) {
	u := *p.upstream
	u.Path, u.RawPath, u.RawQuery = in.URL.Path, in.URL.RawPath, in.URL.RawQuery
	out, err := http.NewRequestWithContext(p.ctx, in.Method, u.String(), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	out.Header = in.Header.Clone()
	removeHopHeaders(out.Header)
	out.ContentLength = int64(len(body))
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := readBounded(resp.Body, p.opts.MaxBody)
	if err != nil {
		return nil, nil, err
	}
	return resp, b, nil
}

func (p *Proxy) replay(req *http.Request, body []byte, after time.Duration) {
	defer p.wg.Done()
	if after > 0 && !p.wait(after) {
		return
	}
	_, _, _ = p.forward(req, body) // the second answer goes nowhere
}

// wait sleeps for d unless the proxy closes first.
func (p *Proxy) wait(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-p.ctx.Done():
		return false
	}
}

var errTooLarge = errors.New("body too large")

func readBounded(r io.Reader, max int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, errTooLarge
	}
	return b, nil
}

// reset closes c with a TCP RST, so the peer sees the connection fail
// rather than end.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}

var hopHeaders = []string{
	"Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization",
	"Proxy-Connection", "Te", "Trailer", "Transfer-Encoding", "Upgrade",
}

func removeHopHeaders(h http.Header) {
	for _, k := range hopHeaders {
		h.Del(k)
	}
}
