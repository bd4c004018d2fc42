package coordinator_test

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// A page an operator visits cannot submit, abort or retry: a cross-site
// POST is refused whatever its type, a POST that is not
// application/json is refused, and nothing is submitted.
func TestCrossSiteRequestsRefused(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.start()
	post := func(ctype string, hdr map[string]string, path, body string) int {
		req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	cross := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
	sub := submitBody("csrf-1", "flights", "hotels")
	if c := post("text/plain;charset=UTF-8", cross, wire.PathTransactions, sub); c != http.StatusForbidden {
		t.Errorf("cross-site text/plain submit: %d, want 403", c)
	}
	if c := post("application/json", cross, wire.PathTransactions, sub); c != http.StatusForbidden {
		t.Errorf("cross-site JSON submit: %d, want 403", c)
	}
	if c := post("text/plain", nil, wire.PathTransactions, sub); c != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain submit: %d, want 415", c)
	}
	for _, action := range []string{"abort", "retry"} {
		if c := post("", nil, wire.TransactionPath("csrf-1")+"/"+action, ""); c != http.StatusUnsupportedMediaType {
			t.Errorf("%s without a type: %d, want 415", action, c)
		}
	}
	if st := e.c.Stats(); st.Submitted != 0 {
		t.Fatalf("%d submitted by refused requests", st.Submitted)
	}
	if c := post("application/json", map[string]string{"Sec-Fetch-Site": "same-origin"}, wire.PathTransactions, sub); c != http.StatusOK {
		t.Errorf("same-origin JSON submit: %d, want 200", c)
	}
}

// The coordinator caps its connections from one address, and closes a
// connection after a 401 and one that has not authenticated and waits.
func TestConnectionsBounded(t *testing.T) {
	e := newSecureEnv(t, "flights", "hotels")
	e.opts.MaxConnsPerHost = 4
	e.opts.UnauthIdleTimeout = 200 * time.Millisecond
	e.start()
	addr := strings.TrimPrefix(e.url, "https://")
	var conns []net.Conn
	for range 12 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		conns = append(conns, c)
	}
	deadline := time.Now().Add(10 * time.Second)
	for st := e.c.Stats(); int64(st.ConnsOpen)+st.ConnsRefused < 12; st = e.c.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("accepted: %+v", st)
		}
		time.Sleep(time.Millisecond) // the accept loop is the server's: poll its counters
	}
	if st := e.c.Stats(); st.ConnsOpen != 4 || st.ConnsRefused != 8 {
		t.Fatalf("12 connections from one address: %d open, %d refused; want 4 and 8", st.ConnsOpen, st.ConnsRefused)
	}
	// The idle, unauthenticated ones (no handshake even) are closed after
	// UnauthIdleTimeout, freeing the places.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); isTimeout(err) {
			t.Fatal("a connection that sent nothing was kept 5 s")
		}
	}
	for st := e.c.Stats(); st.ConnsOpen != 0; st = e.c.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("after the idle timeout %d connections are open", st.ConnsOpen)
		}
		time.Sleep(time.Millisecond) // the server closes them on its own goroutines
	}
	// A 401 closes its connection.
	tc, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: e.srv.CAs, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	io.WriteString(tc, "GET /v1/transactions HTTP/1.1\r\nHost: x\r\n\r\n")
	tc.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(tc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !resp.Close {
		t.Errorf("no credentials: %d, close %v; want 401 and the connection closed", resp.StatusCode, resp.Close)
	}
	if _, err := br.ReadByte(); err == nil || isTimeout(err) {
		t.Errorf("after a 401 the connection stays open: %v", err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// Under TLS the coordinator is advertised over https only: participants
// follow the URL to learn outcomes.
func TestTLSRefusesPlainAdvertiseURL(t *testing.T) {
	e := newSecureEnv(t, "flights")
	e.opts.AdvertiseURL = "http://127.0.0.1:7070"
	if err := e.tryStart(); !errors.Is(err, coordinator.ErrInvalidOptions) || !strings.Contains(err.Error(), "https") {
		t.Fatalf("TLS with an http advertise URL: %v, want ErrInvalidOptions", err)
	}
	e.opts.AdvertiseURL = "https://coord.example:7070"
	if err := e.tryStart(); err != nil {
		t.Fatalf("https advertise URL: %v", err)
	}
}

// Only a certificate in the participant role asks about the outcomes of
// its branches: a client certificate named flights is refused.
func TestOutcomeNeedsParticipantRole(t *testing.T) {
	e := newSecureEnv(t, "flights", "hotels")
	e.start()
	if code, msg, err := do(e.as(nil, aliceToken), "POST", e.url+wire.PathTransactions, submitBody("fh", "flights", "hotels")); err != nil || code != 200 {
		t.Fatalf("submit: %d %s %v", code, msg, err)
	}
	if code, msg, err := do(e.as(e.ca.LoadRole("flights", security.RoleClient), ""), "GET", e.url+wire.OutcomePath("fh"), ""); err != nil || code != http.StatusForbidden {
		t.Errorf("client certificate named flights: %d %s %v, want 403", code, msg, err)
	}
	if code, msg, err := do(e.as(e.ca.LoadRole("flights", security.RoleParticipant), ""), "GET", e.url+wire.OutcomePath("fh"), ""); err != nil || code != 200 {
		t.Errorf("participant flights: %d %s %v, want 200", code, msg, err)
	}
}

// Failed TLS handshakes, which any stranger causes, are logged a few a
// second, not once each, even at the Debug level.
func TestHandshakeFailuresLogThrottled(t *testing.T) {
	e := newSecureEnv(t, "flights")
	var logs syncBuf
	e.opts.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.start()
	addr := strings.TrimPrefix(e.url, "https://")
	for range 40 {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n") // not a TLS hello
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, c) // until the server closes it
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "handshake") {
		if time.Now().After(deadline) {
			t.Fatalf("no handshake failure logged: %q", logs.String())
		}
		time.Sleep(time.Millisecond) // the server logs on its own goroutines
	}
	if n := strings.Count(logs.String(), "handshake"); n > 20 {
		t.Errorf("%d lines for 40 failed handshakes, want a few", n)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
