package security

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// issueRaw signs a leaf with ca from tmpl (for certificates Issue would
// never make) and returns it parsed.
func issueRaw(t *testing.T, ca *DevCA, tmpl *x509.Certificate) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.SerialNumber = serial()
	tmpl.NotBefore, tmpl.NotAfter = time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An identity is the common name only, a role only its URI SAN: a
// certificate with an empty CN and the DNS SAN "coordinator" names no one
// (it used to be the coordinator), and one named coordinator in the client
// role does not pass for the coordinator.
func TestIdentityAndRole(t *testing.T) {
	ca, err := NewDevCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dnsOnly := issueRaw(t, ca, &x509.Certificate{DNSNames: []string{"coordinator"}})
	if id := Identity(dnsOnly); id != "" {
		t.Errorf("empty CN, DNS SAN coordinator: identity %q, want none", id)
	}
	if r := Role(dnsOnly); r != "" {
		t.Errorf("no URI SAN: role %q", r)
	}
	for _, c := range []struct{ name, role string }{{"coordinator", RoleCoordinator}, {"flights", RoleParticipant}, {"alice", RoleClient}} {
		certPEM, _, err := ca.Issue(c.name, c.role, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if leaf := parsePEM(t, certPEM); Identity(leaf) != c.name || Role(leaf) != c.role {
			t.Errorf("%s: identity %q role %q", c.name, Identity(leaf), Role(leaf))
		}
	}
	if _, _, err := ca.Issue("x", "admin", time.Now()); err == nil {
		t.Error("a certificate of an unknown role was issued")
	}
	coordURI, clientURI := mustURL(t, RoleURIPrefix+RoleCoordinator), mustURL(t, RoleURIPrefix+RoleClient)
	if r := Role(issueRaw(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, URIs: []*url.URL{coordURI, clientURI}})); r != "" {
		t.Errorf("two roles: %q", r)
	}
	if r := Role(issueRaw(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "x"}, URIs: []*url.URL{mustURL(t, RoleURIPrefix+"root")}})); r != "" {
		t.Errorf("unknown role: %q", r)
	}
	check := VerifyPeer(RoleCoordinator, "coordinator")
	impostor := issueRaw(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "coordinator"}, URIs: []*url.URL{clientURI}})
	if err := check(tls.ConnectionState{PeerCertificates: []*x509.Certificate{impostor}}); !errors.Is(err, ErrWrongPeer) {
		t.Errorf("a client certificate named coordinator passed for the coordinator: %v", err)
	}
	real := issueRaw(t, ca, &x509.Certificate{Subject: pkix.Name{CommonName: "coordinator"}, URIs: []*url.URL{coordURI}})
	if err := check(tls.ConnectionState{PeerCertificates: []*x509.Certificate{real}}); err != nil {
		t.Errorf("the coordinator: %v", err)
	}
}

// tlsServer serves h over TLS with a certificate of ca (participant role,
// SAN 127.0.0.1) and returns it with a client configuration trusting ca.
func tlsServer(t *testing.T, ca *DevCA, h http.Handler) (*httptest.Server, *tls.Config) {
	t.Helper()
	certPEM, keyPEM, err := ca.Issue("server", RoleParticipant, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca.CertPEM)
	return srv, &tls.Config{RootCAs: pool}
}

// Under TLS nothing is sent or followed over plain http: a client of
// WithClientTLS refuses an http URL and does not follow a redirect (here
// to a plain-http server that would answer anything).
func TestTLSClientRefusesPlainHTTPAndRedirects(t *testing.T) {
	ca, err := NewDevCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var plainHits atomic.Int64
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		plainHits.Add(1)
		io.WriteString(w, "committed")
	}))
	defer plain.Close()
	redirector, cfg := tlsServer(t, ca, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	hc, err := WithClientTLS(&http.Client{Timeout: 10 * time.Second}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if resp, err := hc.Get(plain.URL + "/v1/x"); !errors.Is(err, ErrPlainHTTP) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("plain http under TLS: %v, want ErrPlainHTTP", err)
	}
	if resp, err := hc.Get(redirector.URL + "/v1/x"); !errors.Is(err, ErrRedirect) {
		if resp != nil {
			resp.Body.Close()
		}
		t.Errorf("redirect: %v, want ErrRedirect", err)
	}
	if n := plainHits.Load(); n != 0 {
		t.Errorf("the plain-http server was reached %d times", n)
	}
	// WithClientTLS of its own result keeps both checks.
	hc2, err := WithClientTLS(hc, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hc2.Get(plain.URL); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("rewrapped: %v", err)
	}
}

// The bearer token goes over https only, and only to its host.
func TestBearerTransport(t *testing.T) {
	ca, err := NewDevCA("test CA", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	seen := make(chan string, 4)
	record := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen <- r.Header.Get("Authorization") })
	own, cfg := tlsServer(t, ca, record)
	other, _ := tlsServer(t, ca, record)
	plain := httptest.NewServer(record)
	defer plain.Close()
	base := &http.Transport{TLSClientConfig: cfg}
	defer base.CloseIdleConnections()
	u, _ := url.Parse(own.URL)
	hc := &http.Client{Transport: &BearerTransport{Token: "secret-token-0123456789", Host: u.Host, Base: base}, Timeout: 10 * time.Second}
	get := func(url string) (string, error) {
		resp, err := hc.Get(url)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		return <-seen, nil
	}
	if got, err := get(own.URL); err != nil || got != "Bearer secret-token-0123456789" {
		t.Errorf("own host: %q %v", got, err)
	}
	// The other server differs by its port: host:port is compared.
	if got, err := get(other.URL); err != nil || got != "" {
		t.Errorf("another host got %q (%v)", got, err)
	}
	if _, err := get(plain.URL); !errors.Is(err, ErrPlainHTTP) {
		t.Errorf("plain http: %v, want ErrPlainHTTP", err)
	}
	select {
	case got := <-seen:
		t.Errorf("the plain-http server was reached, with %q", got)
	default:
	}
}

// waitAccepted waits, polling with a bound, until the listener has taken
// n connections (open or refused).
func waitAccepted(t *testing.T, l *LimitedListener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for int64(l.Open())+l.Refused() < int64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("accepted %d, refused %d of %d connections", l.Open(), l.Refused(), n)
		}
		time.Sleep(time.Millisecond) // the accept loop runs on its own goroutine: poll its counters
	}
}

// closedByServer reports whether the server closed c within bound (a read
// returns EOF or a reset) rather than the read timing out on our side.
func closedByServer(c net.Conn, bound time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(bound))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// The connection limits hold on loopback: overall and per remote address,
// one connection past them is closed at once, and the count falls as
// connections close.
func TestLimitListenerCaps(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := LimitListener(ln, ConnLimits{Max: 5, PerHost: 3})
	srv := &http.Server{Handler: http.NotFoundHandler(), ConnState: l.ConnState, ConnContext: l.ConnContext}
	go srv.Serve(l)
	defer srv.Close()
	dial := func(local string) net.Conn {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var first []net.Conn
	for range 6 {
		first = append(first, dial("127.0.0.1"))
	}
	waitAccepted(t, l, 6)
	if l.Open() != 3 || l.Refused() != 3 {
		t.Fatalf("from one address: %d open, %d refused; want 3 and 3", l.Open(), l.Refused())
	}
	closed := 0
	for _, c := range first {
		if closedByServer(c, 200*time.Millisecond) {
			closed++
		}
	}
	if closed != 3 {
		t.Errorf("%d of the 6 connections closed by the server, want the 3 past the limit", closed)
	}
	// Another loopback address has its own 3, but the overall bound is 5.
	for range 3 {
		dial("127.0.0.2")
	}
	waitAccepted(t, l, 9)
	if l.Open() != 5 || l.Refused() != 4 {
		t.Fatalf("overall: %d open, %d refused; want 5 and 4", l.Open(), l.Refused())
	}
	for _, c := range first {
		c.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.Open() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("after closing: %d open, want 2", l.Open())
		}
		time.Sleep(time.Millisecond) // the server notices the close on its own goroutine
	}
}

// A connection that has not authenticated is closed after UnauthIdle of
// waiting, before its first request or between requests; one whose request
// authenticated keeps the server's idle timeout.
func TestUnauthenticatedIdle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	const idle = 100 * time.Millisecond
	l := LimitListener(ln, ConnLimits{UnauthIdle: idle})
	srv := &http.Server{ConnState: l.ConnState, ConnContext: l.ConnContext, IdleTimeout: time.Minute, ReadHeaderTimeout: time.Minute,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/auth" {
				MarkAuthenticated(r.Context())
			}
		})}
	go srv.Serve(l)
	defer srv.Close()
	conn := func(path string) net.Conn {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if path == "" {
			return c
		}
		io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return c
	}
	if !closedByServer(conn(""), 5*time.Second) {
		t.Error("a connection that sent nothing was kept 5 s")
	}
	if !closedByServer(conn("/open"), 5*time.Second) {
		t.Error("an unauthenticated idle connection was kept 5 s")
	}
	if closedByServer(conn("/auth"), 5*idle) {
		t.Error("an authenticated connection was closed at the unauthenticated idle timeout")
	}
}

// A flood of refusals logs at most Burst lines per Every, and the next
// line allowed says how many were suppressed.
func TestLogLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := &LogLimiter{Every: time.Second, Burst: 3, Now: func() time.Time { return now }}
	allowed := 0
	for range 100 {
		if ok, _ := l.Allow(); ok {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d of 100 allowed in one second, want 3", allowed)
	}
	now = now.Add(time.Second)
	if ok, s := l.Allow(); !ok || s != 97 {
		t.Errorf("next second: %v, %d suppressed; want true, 97", ok, s)
	}
}

// Cross-site requests that are not safe are refused, whatever their
// Content-Type; a POST must be application/json.
func TestProtectAndRequireJSON(t *testing.T) {
	var hits atomic.Int64
	h := Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && !RequireJSON(w, r) {
			return
		}
		hits.Add(1)
	}))
	do := func(method, ctype string, hdr map[string]string) int {
		r := httptest.NewRequest(method, "https://coord.example/v1/transactions", strings.NewReader("{}"))
		if ctype != "" {
			r.Header.Set("Content-Type", ctype)
		}
		for k, v := range hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	cross := map[string]string{"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
	if c := do("POST", "text/plain;charset=UTF-8", cross); c != http.StatusForbidden {
		t.Errorf("cross-site text/plain POST: %d", c)
	}
	if c := do("POST", "application/json", cross); c != http.StatusForbidden {
		t.Errorf("cross-site JSON POST: %d", c)
	}
	if c := do("POST", "application/json", map[string]string{"Origin": "https://evil.example"}); c != http.StatusForbidden {
		t.Errorf("cross-origin POST without Sec-Fetch-Site: %d", c)
	}
	if c := do("POST", "text/plain", nil); c != http.StatusUnsupportedMediaType {
		t.Errorf("text/plain POST: %d", c)
	}
	if c := do("POST", "", nil); c != http.StatusUnsupportedMediaType {
		t.Errorf("POST without a type: %d", c)
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d refused requests reached the handler", n)
	}
	if c := do("POST", "application/json; charset=utf-8", map[string]string{"Sec-Fetch-Site": "same-origin"}); c != http.StatusOK {
		t.Errorf("same-origin JSON POST: %d", c)
	}
	if c := do("GET", "", cross); c != http.StatusOK {
		t.Errorf("cross-site GET: %d", c)
	}
}

// After a request with both Content-Length and Transfer-Encoding the
// connection is closed (RFC 9112 §6.1): a second request smuggled in the
// body a front end counted by Content-Length is never served.
func TestSmuggledRequestClosesConnection(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(Protect(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
	})))
	defer srv.Close()
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /first HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"+
		"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !resp.Close {
		t.Error("the answer to a request with both Content-Length and Transfer-Encoding keeps the connection")
	}
	if resp2, err := http.ReadResponse(br, nil); err == nil {
		resp2.Body.Close()
		t.Errorf("a second request on the connection was answered %d", resp2.StatusCode)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "/first" {
		t.Errorf("served %v, want [/first]", paths)
	}
}

// certs init writes through os.CreateTemp: a symlink planted where the old
// code put its temporary file is never followed, and the CA key goes to
// ca-private/ (0700), apart from what is deployed.
func TestWriteDevPKIPlantedSymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"ca.pem.tmp", "coordinator-key.pem.tmp", "tokens.txt.tmp"} {
		if err := os.Symlink(victim, filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, DevPKI.Private), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, DevPKI.Private, "ca-key.pem.tmp")); err != nil {
		t.Fatal(err)
	}
	paths, err := WriteDevPKI(dir, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious" {
		t.Fatalf("the symlink target was overwritten: %q", b)
	}
	caKey := filepath.Join(dir, DevPKI.Private, "ca-key.pem")
	found := false
	for _, p := range paths {
		found = found || p == caKey
		if p == filepath.Join(dir, "ca-key.pem") {
			t.Errorf("the CA key is written beside the certificates: %s", p)
		}
	}
	if !found {
		t.Errorf("CA key not at %s: %v", caKey, paths)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err == nil {
		t.Errorf("ca-key.pem beside the certificates")
	}
	fi, err := os.Stat(filepath.Join(dir, DevPKI.Private))
	if err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v, want mode 0700", DevPKI.Private, fi.Mode().Perm(), err)
	}
	if fi, err := os.Stat(caKey); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}
