package faultproxy

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// upstream is an httptest server that counts and records what reaches it.
type upstream struct {
	*httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	bodies []string
	block  chan struct{} // when non-nil, each request waits for it
	inside chan struct{} // signalled when a blocked request has arrived
}

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, r.Method+" "+r.URL.RequestURI()+" "+r.Header.Get("X-Test")+" "+string(b))
		block, inside := u.block, u.inside
		u.mu.Unlock()
		u.hits.Add(1)
		if block != nil {
			inside <- struct{}{}
			<-block
		}
		w.Header().Set("X-Answer", "yes")
		w.WriteHeader(http.StatusAccepted)
		io.WriteString(w, "echo:"+string(b))
	}))
	t.Cleanup(u.Close)
	return u
}

func newProxy(t *testing.T, up string) *Proxy {
	t.Helper()
	p, err := New(Options{Upstream: up, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
}

func post(c *http.Client, url, body string) (*http.Response, string, error) {
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	req.Header.Set("X-Test", "h1")
	resp, err := c.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

// eventually polls cond until it holds or a deadline passes; the proxy and
// upstream are real sockets, so there is nothing to wait on directly.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestForwardsRequestsOverKeepAlive(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	c := client()
	for i, body := range []string{"one", "two", ""} {
		resp, got, err := post(c, p.URL()+"/v1/prepare?x=1", body)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != http.StatusAccepted || got != "echo:"+body || resp.Header.Get("X-Answer") != "yes" {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, got, resp.Header)
		}
	}
	if want := "POST /v1/prepare?x=1 h1 two"; up.bodies[1] != want {
		t.Fatalf("upstream saw %q, want %q", up.bodies[1], want)
	}
	if s := p.Stats(); s.Requests != 3 || s.Forwarded != 3 {
		t.Fatalf("stats %+v", s)
	}
}

func TestPartitionDropsUntilHealed(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	if err := p.SetFaults(Faults{Partitioned: true}); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := post(client(), p.URL()+"/v1/commit", "x")
		errc <- err
	}()
	eventually(t, "the request to be held", func() bool { return p.Stats().Dropped == 1 })
	select {
	case err := <-errc:
		t.Fatalf("held request answered during the partition: %v", err)
	default:
	}
	p.Heal()
	if err := <-errc; err == nil {
		t.Fatal("request dropped by a partition got an answer")
	}
	if up.hits.Load() != 0 {
		t.Fatalf("partitioned request reached the upstream")
	}
	if _, got, err := post(client(), p.URL()+"/", "after"); err != nil || got != "echo:after" {
		t.Fatalf("after heal: %q %v", got, err)
	}
}

func TestResetBeforeLosesTheRequest(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	if err := p.SetFaults(Faults{ResetBefore: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := post(client(), p.URL()+"/", "x"); err == nil {
		t.Fatal("lost request answered")
	}
	if up.hits.Load() != 0 || p.Stats().ResetsBefore != 1 {
		t.Fatalf("upstream hits %d, stats %+v", up.hits.Load(), p.Stats())
	}
}

func TestResetAfterDeliversButLosesTheAnswer(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	if err := p.SetFaults(Faults{ResetAfter: 1}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := post(client(), p.URL()+"/", "x"); err == nil {
		t.Fatal("answer was not lost")
	}
	if up.hits.Load() != 1 || p.Stats().ResetsAfter != 1 {
		t.Fatalf("upstream hits %d (want 1), stats %+v", up.hits.Load(), p.Stats())
	}
}

func TestPartitionDuringExchangeLosesTheAnswer(t *testing.T) {
	up := newUpstream(t)
	up.block, up.inside = make(chan struct{}), make(chan struct{})
	p := newProxy(t, up.URL)
	errc := make(chan error, 1)
	go func() {
		_, _, err := post(client(), p.URL()+"/", "x")
		errc <- err
	}()
	<-up.inside
	if err := p.SetFaults(Faults{Partitioned: true}); err != nil {
		t.Fatal(err)
	}
	close(up.block)
	if err := <-errc; err == nil {
		t.Fatal("answer crossed a partition")
	}
	if up.hits.Load() != 1 {
		t.Fatalf("upstream hits %d, want 1", up.hits.Load())
	}
}

func TestDuplicateSendsTwiceAnswersOnce(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	if err := p.SetFaults(Faults{Duplicate: 1, ReplayDelayMax: 20 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	resp, got, err := post(client(), p.URL()+"/v1/abort", `{"ids":["t1"]}`)
	if err != nil || resp.StatusCode != http.StatusAccepted || got != `echo:{"ids":["t1"]}` {
		t.Fatalf("%v %q", err, got)
	}
	eventually(t, "the duplicate to reach the upstream", func() bool { return up.hits.Load() == 2 })
	up.mu.Lock()
	defer up.mu.Unlock()
	if up.bodies[0] != up.bodies[1] {
		t.Fatalf("duplicate differs: %q vs %q", up.bodies[0], up.bodies[1])
	}
	if s := p.Stats(); s.Duplicated != 1 || s.Forwarded != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDelayHoldsEachRequest(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	const min = 60 * time.Millisecond
	if err := p.SetFaults(Faults{DelayMin: min, DelayMax: min + 10*time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, _, err := post(client(), p.URL()+"/", "x"); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el < min {
		t.Fatalf("answered after %v, want at least %v", el, min)
	}
	if p.Stats().Delayed != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestUpstreamDownResetsTheClient(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	up.Close()
	if _, _, err := post(client(), p.URL()+"/", "x"); err == nil {
		t.Fatal("answer from a dead upstream")
	}
	if p.Stats().UpstreamErrors != 1 {
		t.Fatalf("stats %+v", p.Stats())
	}
}

func TestCloseReleasesHeldRequests(t *testing.T) {
	up := newUpstream(t)
	p, err := New(Options{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	_ = p.SetFaults(Faults{Partitioned: true})
	errc := make(chan error, 1)
	go func() {
		_, _, err := post(client(), p.URL()+"/", "x")
		errc <- err
	}()
	eventually(t, "the request to be held", func() bool { return p.Stats().Dropped == 1 })
	p.Close()
	if err := <-errc; err == nil {
		t.Fatal("held request answered")
	}
	if _, _, err := post(client(), p.URL()+"/", "x"); err == nil {
		t.Fatal("closed proxy answered")
	}
}

func TestBadOptionsAndFaults(t *testing.T) {
	for _, o := range []Options{
		{Upstream: ""},
		{Upstream: "127.0.0.1:80"},
		{Upstream: "http://10.1.2.3:80"},
		{Upstream: "http://127.0.0.1:80/v1"},
		{Upstream: "http://127.0.0.1:80", Listen: "0.0.0.0:0"},
		{Upstream: "http://127.0.0.1:80", MaxBody: -1},
	} {
		if _, err := New(o); !errors.Is(err, ErrBadOptions) {
			t.Errorf("New(%+v) = %v, want ErrBadOptions", o, err)
		}
	}
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	for _, f := range []Faults{
		{Duplicate: 1.5}, {ResetAfter: -0.1}, {DelayMin: time.Second, DelayMax: time.Millisecond}, {ReplayDelayMax: -1},
	} {
		if err := p.SetFaults(f); !errors.Is(err, ErrBadFaults) {
			t.Errorf("SetFaults(%+v) = %v, want ErrBadFaults", f, err)
		}
	}
}

func TestFaultsString(t *testing.T) {
	if s := (Faults{}).String(); s != "healthy" {
		t.Fatal(s)
	}
	s := Faults{Partitioned: true, Duplicate: 0.2, DelayMax: time.Second}.String()
	for _, w := range []string{"partitioned", "duplicate 20%", "delay"} {
		if !strings.Contains(s, w) {
			t.Errorf("%q lacks %q", s, w)
		}
	}
}
