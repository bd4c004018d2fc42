package coordinator_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"github.com/concordtx/concord/internal/apicheck"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

const (
	aliceToken = "alice-token-0123456789"
	opsToken   = "ops-token-0123456789ab"
	// flightsToken is held by a client that took a participant's name.
	flightsToken = "flights-token-01234567"
)

// secureEnv is an env whose coordinator serves HTTPS and authenticates:
// alice and a client named flights by token, bob by certificate, ops as
// an operator; participants by certificate.
type secureEnv struct {
	*env
	ca    *pki.PKI
	other *pki.PKI
	srv   *security.TLS
}

func newSecureEnv(t *testing.T, names ...string) *secureEnv {
	e := &secureEnv{env: newEnv(t, names...), ca: pki.New(t, "test CA"), other: pki.New(t, "other CA")}
	e.srv = e.ca.Load("coordinator", true)
	toks, err := security.ParseTokens(strings.NewReader(fmt.Sprintf("alice %s\nops %s operator\nflights %s\n", aliceToken, opsToken, flightsToken)))
	if err != nil {
		t.Fatal(err)
	}
	e.opts.TLS = e.srv.ServerConfig(false)
	e.opts.Auth = &security.Authenticator{Tokens: toks}
	return e
}

// as returns an HTTP client presenting cert (nil: none) and token ("": none).
func (e *secureEnv) as(cert *security.TLS, token string) *http.Client {
	cfg := &tls.Config{RootCAs: e.srv.CAs}
	if cert != nil {
		// Present the certificate whatever CAs the server names (a Go
		// client otherwise sends none the server would not accept).
		c := cert.Cert
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	hc, err := security.WithClientTLS(&http.Client{Timeout: 10 * time.Second}, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	if token != "" {
		hc.Transport = &security.BearerTransport{Token: token, Base: hc.Transport}
	}
	return apicheck.Default.Client(hc) // every exchange validated against the OpenAPI document
}

// do sends a request and returns the status and body; err is a transport
// failure (a refused handshake).
func do(hc *http.Client, method, url, body string) (int, string, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, url, rd)
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func submitBody(id concord.TxID, names ...string) string {
	b, _ := json.Marshal(wire.SubmitRequest{ID: id, Branches: branches(names...)})
	return string(b)
}

func TestAuthenticationRequired(t *testing.T) {
	e := newSecureEnv(t, "flights")
	e.start()
	if !strings.HasPrefix(e.url, "https://") {
		t.Fatalf("URL %s is not https", e.url)
	}
	body := submitBody("t1", "flights")
	for _, c := range []struct {
		name  string
		hc    *http.Client
		code  int
		reach bool
	}{
		{"no certificate, no token", e.as(nil, ""), http.StatusUnauthorized, true},
		{"unknown token", e.as(nil, "not-a-token-0123456789"), http.StatusUnauthorized, true},
		{"valid certificate with an unknown token", e.as(e.ca.Load("bob", false), "not-a-token-0123456789"), http.StatusUnauthorized, true},
		{"certificate of another CA", e.as(e.other.Load("bob", false), ""), 0, false},
		{"certificate of another CA with a valid token", e.as(e.other.Load("bob", false), aliceToken), 0, false},
	} {
		code, msg, err := do(c.hc, "POST", e.url+wire.PathTransactions, body)
		if c.reach && (err != nil || code != c.code) {
			t.Errorf("%s: %d %s %v, want %d", c.name, code, msg, err, c.code)
		}
		if !c.reach && err == nil {
			t.Errorf("%s: answered %d %s, want a refused handshake", c.name, code, msg)
		}
	}
	// Plain HTTP to the TLS port is no way in either.
	if code, msg, err := do(http.DefaultClient, "POST", strings.Replace(e.url, "https", "http", 1)+wire.PathTransactions, body); err == nil && code < 400 {
		t.Errorf("plain HTTP: %d %s", code, msg)
	}
	if n := e.parts["flights"].Count(wire.PathPrepare); n != 0 {
		t.Fatalf("a refused submission reached the participant (%d prepares)", n)
	}
	if st := e.c.Stats(); st.Submitted != 0 || st.Unauthenticated < 3 {
		t.Errorf("stats: submitted %d, unauthenticated %d", st.Submitted, st.Unauthenticated)
	}
	// Health needs no credentials; the next authenticated request works.
	if code, _, err := do(e.as(nil, ""), "GET", e.url+wire.PathHealth, ""); err != nil || code != 200 {
		t.Errorf("healthz: %d %v", code, err)
	}
	if code, msg, err := do(e.as(nil, aliceToken), "POST", e.url+wire.PathTransactions, body); err != nil || code != 200 || !strings.Contains(msg, `"committed"`) {
		t.Errorf("alice: %d %s %v", code, msg, err)
	}
}

func TestClientsSeeOnlyTheirOwn(t *testing.T) {
	e := newSecureEnv(t, "flights", "hotels")
	e.start()
	alice, bob, ops := e.as(nil, aliceToken), e.as(e.ca.Load("bob", false), ""), e.as(nil, opsToken)
	for _, s := range []struct {
		hc *http.Client
		id concord.TxID
	}{{alice, "a-1"}, {bob, "b-1"}, {bob, "b-2"}} {
		if code, msg, err := do(s.hc, "POST", e.url+wire.PathTransactions, submitBody(s.id, "flights", "hotels")); err != nil || code != 200 {
			t.Fatalf("submit %s: %d %s %v", s.id, code, msg, err)
		}
	}
	check := func(who string, hc *http.Client, method, path, body string, want int) {
		t.Helper()
		code, msg, err := do(hc, method, e.url+path, body)
		if err != nil || code != want {
			t.Errorf("%s %s %s: %d %s %v, want %d", who, method, path, code, msg, err, want)
		}
	}
	check("alice", alice, "GET", wire.TransactionPath("a-1"), "", 200)
	check("alice", alice, "GET", wire.TransactionPath("b-1"), "", 403)
	check("alice", alice, "GET", wire.TransactionPath("b-1")+"/timeline", "", 403)
	check("alice", alice, "POST", wire.TransactionPath("b-1")+"/abort", "", 403)
	check("alice", alice, "POST", wire.TransactionPath("b-1")+"/retry", "", 403)
	check("alice", alice, "GET", wire.OutcomePath("b-1"), "", 403)
	// Resubmitting bob's id with bob's body would read bob's outcome.
	check("alice", alice, "POST", wire.PathTransactions, submitBody("b-1", "flights", "hotels"), 409)
	check("alice", alice, "GET", wire.PathMetrics, "", 403)
	check("alice", alice, "GET", wire.PathStats, "", 403)
	check("alice", alice, "GET", wire.PathOverview, "", 403)
	check("alice", alice, "GET", wire.TransactionPath("nope"), "", 404)
	check("alice", alice, "GET", "/v1/not-yet-an-endpoint", "", 403)
	check("ops", ops, "GET", "/v1/not-yet-an-endpoint", "", 404)
	check("bob", bob, "GET", wire.TransactionPath("b-1"), "", 200)
	check("bob", bob, "POST", wire.PathTransactions, submitBody("b-1", "flights", "hotels"), 200)
	check("bob", bob, "POST", wire.TransactionPath("a-1")+"/abort", "", 403)
	check("ops", ops, "GET", wire.TransactionPath("a-1"), "", 200)
	check("ops", ops, "GET", wire.TransactionPath("b-2"), "", 200)
	check("ops", ops, "GET", wire.PathMetrics, "", 200)
	check("ops", ops, "GET", wire.PathStats, "", 200)

	list := func(hc *http.Client) []concord.TxID {
		code, msg, err := do(hc, "GET", e.url+wire.PathTransactions+"?state=all", "")
		if err != nil || code != 200 {
			t.Fatalf("list: %d %s %v", code, msg, err)
		}
		var l wire.TxList
		json.Unmarshal([]byte(msg), &l)
		var ids []concord.TxID
		for _, s := range l.Transactions {
			ids = append(ids, s.ID)
		}
		return ids
	}
	if got := fmt.Sprint(list(alice)); got != "[a-1]" {
		t.Errorf("alice lists %s", got)
	}
	if got := fmt.Sprint(list(bob)); got != "[b-1 b-2]" {
		t.Errorf("bob lists %s", got)
	}
	if got := fmt.Sprint(list(ops)); got != "[a-1 b-1 b-2]" {
		t.Errorf("ops lists %s", got)
	}
	if st := e.c.Stats(); st.Submitted != 3 || st.Forbidden < 9 {
		t.Errorf("submitted %d (want 3: refusals start nothing), forbidden %d", st.Submitted, st.Forbidden)
	}
}

func TestOutcomeOnlyForOwnTransactions(t *testing.T) {
	e := newSecureEnv(t, "flights", "hotels", "cars")
	e.start()
	alice := e.as(nil, aliceToken)
	if code, msg, err := do(alice, "POST", e.url+wire.PathTransactions, submitBody("fh", "flights", "hotels")); err != nil || code != 200 {
		t.Fatalf("submit: %d %s %v", code, msg, err)
	}
	ask := func(who string, hc *http.Client, id concord.TxID, want int, outcome string) {
		t.Helper()
		code, msg, err := do(hc, "GET", e.url+wire.OutcomePath(id), "")
		if want == 0 { // the handshake must fail
			if err == nil {
				t.Errorf("%s asks about %s: answered %d %s, want a refused handshake", who, id, code, msg)
			}
			return
		}
		if err != nil || code != want || !strings.Contains(msg, outcome) {
			t.Errorf("%s asks about %s: %d %s %v, want %d %s", who, id, code, msg, err, want, outcome)
		}
	}
	flights, cars := e.as(e.ca.Load("flights", true), ""), e.as(e.ca.Load("cars", true), "")
	ask("flights", flights, "fh", 200, `"committed"`)
	ask("cars, not a branch", cars, "fh", 403, "not a participant")
	ask("cars, unknown transaction", cars, "never-seen", 200, `"aborted"`)
	ask("a client holding a token named flights", e.as(nil, flightsToken), "fh", 403, "not a participant")
	ask("a client certificate named flights of another CA", e.as(e.other.Load("flights", true), ""), "fh", 0, "")
	ask("alice, the submitter", alice, "fh", 200, `"committed"`)
}

// The submitter is kept in the log's request record: after a restart a
// transaction still awaiting an acknowledgement is still alice's only.
func TestOwnerSurvivesRestart(t *testing.T) {
	e := newSecureEnv(t, "flights", "hotels")
	e.parts["hotels"].SetPathMode(wire.PathCommit, testutil.Down)
	e.start()
	alice, bob := e.as(nil, aliceToken), e.as(e.ca.Load("bob", false), "")
	if code, msg, err := do(alice, "POST", e.url+wire.PathTransactions, submitBody("kept", "flights", "hotels")); err != nil || code != 200 || !strings.Contains(msg, "committed") {
		t.Fatalf("submit: %d %s %v", code, msg, err)
	}
	e.restart()
	alice, bob = e.as(nil, aliceToken), e.as(e.ca.Load("bob", false), "")
	if code, msg, _ := do(alice, "GET", e.url+wire.TransactionPath("kept"), ""); code != 200 || strings.Contains(msg, `"done":true`) {
		t.Errorf("alice after restart: %d %s", code, msg)
	}
	if code, msg, _ := do(bob, "GET", e.url+wire.TransactionPath("kept"), ""); code != 403 {
		t.Errorf("bob after restart: %d %s", code, msg)
	}
	if code, msg, _ := do(bob, "POST", e.url+wire.PathTransactions, submitBody("kept", "flights", "hotels")); code != 409 {
		t.Errorf("bob resubmits after restart: %d %s", code, msg)
	}
}

func TestOverloadRefused(t *testing.T) {
	e := newEnv(t, "flights")
	e.opts.MaxLive = 2
	e.parts["flights"].SetMode(testutil.Slow)
	e.start()
	seen := make(chan testutil.Seen, 16)
	e.parts["flights"].Notify(seen)
	first := e.submitAsync(wire.SubmitRequest{ID: "slow-1", Branches: branches("flights")})
	second := e.submitAsync(wire.SubmitRequest{ID: "slow-2", Branches: branches("flights")})
	waitSeen(t, seen, wire.PathPrepare)
	eventually(t, "two transactions live", func() bool { return e.c.Stats().Live == 2 })

	resp, err := http.Post(e.url+wire.PathTransactions, "application/json", strings.NewReader(submitBody("third", "flights")))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "overloaded") {
		t.Fatalf("third submission: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	// A resubmission of a live id is no new work: it is still answered.
	third := e.submitAsync(wire.SubmitRequest{ID: "slow-1", Branches: branches("flights")})
	e.parts["flights"].Release()
	for _, ch := range []<-chan submitResult{first, second, third} {
		if r := <-ch; r.err != nil || r.resp.Outcome != concord.OutcomeCommitted {
			t.Fatalf("held submission: %+v", r)
		}
	}
	eventually(t, "nothing live", func() bool { return e.c.Stats().Live == 0 })
	if r := e.submit(wire.SubmitRequest{ID: "after", Branches: branches("flights")}); r.Outcome != concord.OutcomeCommitted {
		t.Errorf("after the load: %+v", r)
	}
	if st := e.c.Stats(); st.Overloaded != 1 {
		t.Errorf("overloaded %d, want 1", st.Overloaded)
	}
}

// Every limit breached once: the documented 4xx, and the next valid
// request succeeds.
func TestLimitsBreachedOnce(t *testing.T) {
	e := newEnv(t, "flights", "hotels")
	e.opts.MaxBodyBytes = 4096
	e.opts.MaxBranches = 2
	e.opts.MaxPayloadBytes = 100
	e.opts.MaxHeaderBytes = 2048
	e.opts.ReadHeaderTimeout = 200 * time.Millisecond
	e.start()
	n := 0
	valid := func() {
		t.Helper()
		n++
		if r := e.submit(wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("ok-%d", n)), Branches: branches("flights")}); r.Outcome != concord.OutcomeCommitted {
			t.Fatalf("valid request after a breach: %+v", r)
		}
	}
	big := `{"branches":[{"participant":"flights","payload":"` + strings.Repeat("x", 5000) + `"}]}`
	for _, c := range []struct {
		name, body string
		code       int
		want       string
	}{
		{"body", big, 413, "too large"},
		{"branches", `{"branches":[{"participant":"flights"},{"participant":"hotels"},{"participant":"cars"}]}`, 400, "3 branches, at most 2"},
		{"payload", `{"branches":[{"participant":"flights","payload":"` + strings.Repeat("y", 200) + `"}]}`, 400, "payload of 202 bytes, at most 100"},
		{"id length", `{"id":"` + strings.Repeat("i", concord.MaxTxIDLen+1) + `","branches":[{"participant":"flights"}]}`, 400, "at most"},
		{"id characters", `{"id":"a/b","branches":[{"participant":"flights"}]}`, 400, "allowed are letters"},
		{"unknown participant", `{"branches":[{"participant":"trains"}]}`, 400, "unknown participant"},
		{"unknown field", `{"branches":[{"participant":"flights"}],"x":1}`, 400, "unknown field"},
	} {
		code, body := e.post(wire.PathTransactions, c.body)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s, want %d with %q", c.name, code, body, c.code, c.want)
		}
		valid()
	}

	// Header past MaxHeaderBytes: 431.
	req, _ := http.NewRequest("GET", e.url+wire.PathHealth, nil)
	req.Header.Set("X-Big", strings.Repeat("h", 16<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("big header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	valid()

	// A client that never finishes its header is cut off after
	// ReadHeaderTimeout (real time: it is the server's socket deadline),
	// without an answer: net/http treats the read timeout as a network
	// error and writes nothing (docs/security.md says so).
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err == nil || isTimeout(err) {
		t.Errorf("slow header: %q %v, want the connection closed without an answer", line, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("slow header held for %v", d)
	}
	valid()
	if got := e.c.Stats().Submitted; got != int64(n) {
		t.Errorf("submitted %d, want %d: a refused request started a transaction", got, n)
	}
}
