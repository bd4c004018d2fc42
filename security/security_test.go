package security_test

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"software.sslmate.com/src/go-pkcs12"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/security"
)

func TestParseTokens(t *testing.T) {
	good := "# comment\n\nalice 0123456789abcdef0123\n  bob   fedcba9876543210fedc   operator \n"
	toks, err := security.ParseTokens(strings.NewReader(good))
	if err != nil {
		t.Fatal(err)
	}
	if toks.Len() != 2 {
		t.Fatalf("Len = %d, want 2", toks.Len())
	}
	if name, op, ok := toks.Lookup("0123456789abcdef0123"); !ok || name != "alice" || op {
		t.Errorf("alice's token: %q %v %v", name, op, ok)
	}
	if name, op, ok := toks.Lookup("fedcba9876543210fedc"); !ok || name != "bob" || !op {
		t.Errorf("bob's token: %q %v %v", name, op, ok)
	}
	for _, tok := range []string{"", "0123456789abcdef012", "0123456789abcdef01234", "alice"} {
		if _, _, ok := toks.Lookup(tok); ok {
			t.Errorf("Lookup(%q) matched", tok)
		}
	}
	if got := toks.Operators(); len(got) != 1 || got[0] != "bob" {
		t.Errorf("Operators = %v", got)
	}

	for _, c := range []struct{ in, want string }{
		{"alice", "line 1: want \"name token [operator]\", got 1 fields"},
		{"alice short", "line 1: the token of alice has 5 bytes, at least 16"},
		{"\nal/ice 0123456789abcdef0123", "line 2: name \"al/ice\": byte 2"},
		{"alice 0123456789abcdef0123 admin", "line 1: third field \"admin\""},
		{"alice 0123456789abcdef0123\nalice 0123456789abcdef0124", "line 2: name alice already given on line 1"},
		{"alice 0123456789abcdef0123\nbob 0123456789abcdef0123", "line 2: the token of bob is the same as on line 1"},
		{"a b c d", "line 1: want"},
	} {
		_, err := security.ParseTokens(strings.NewReader(c.in))
		if !errors.Is(err, security.ErrBadTokens) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParseTokens(%q) = %v, want ErrBadTokens with %q", c.in, err, c.want)
		}
	}
	if _, err := security.LoadTokens(filepath.Join(t.TempDir(), "none")); !errors.Is(err, security.ErrBadTokens) {
		t.Errorf("LoadTokens of a missing file = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	toks, err := security.ParseTokens(strings.NewReader("alice 0123456789abcdef0123\nops fedcba9876543210fedc operator\n"))
	if err != nil {
		t.Fatal(err)
	}
	a := &security.Authenticator{Tokens: toks, Operators: []string{"carol"}}
	req := func(auth string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if auth != "" {
			r.Header.Set("Authorization", auth)
		}
		return r
	}
	if _, err := a.Authenticate(req("")); !errors.Is(err, security.ErrNoCredentials) {
		t.Errorf("no credentials: %v", err)
	}
	for _, h := range []string{"Bearer nope-nope-nope-nope", "Basic YWxpY2U6eA==", "Bearer ", "0123456789abcdef0123"} {
		if _, err := a.Authenticate(req(h)); !errors.Is(err, security.ErrBadToken) {
			t.Errorf("Authorization %q: %v, want ErrBadToken", h, err)
		}
	}
	p, err := a.Authenticate(req("Bearer 0123456789abcdef0123"))
	if err != nil || p != (security.Principal{Name: "alice", Via: security.ViaToken, Role: security.RoleClient}) {
		t.Errorf("alice: %+v %v", p, err)
	}
	p, err = a.Authenticate(req("bearer fedcba9876543210fedc"))
	if err != nil || !p.Operator || p.Name != "ops" {
		t.Errorf("ops: %+v %v", p, err)
	}
}

// serve starts an HTTPS server answering the caller's identity.
func serve(t *testing.T, m *security.TLS, require bool) *httptest.Server {
	a := &security.Authenticator{Operators: []string{"ops"}}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		w.Write([]byte(p.Name))
	}))
	srv.TLS = m.ServerConfig(require)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, cfg *tls.Config, url string) (string, error) {
	hc, err := security.WithClientTLS(&http.Client{Timeout: 10 * time.Second}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b := make([]byte, 100)
	n, _ := resp.Body.Read(b)
	return resp.Status + " " + string(b[:n]), nil
}

func TestMutualTLS(t *testing.T) {
	ca := pki.New(t, "test CA")
	other := pki.New(t, "other CA")
	server := ca.Load("flights", true)
	srv := serve(t, server, true)
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)

	got, err := get(t, ca.Load("coordinator", true).ClientConfig(), url)
	if err != nil || got != "200 OK coordinator" {
		t.Errorf("coordinator: %q %v", got, err)
	}
	got, err = get(t, ca.Load("alice", false).ClientConfig(), srv.URL)
	if err != nil || got != "200 OK alice" {
		t.Errorf("client certificate over 127.0.0.1: %q %v", got, err)
	}
	// No client certificate: the handshake fails.
	if got, err := get(t, &tls.Config{RootCAs: server.CAs}, srv.URL); err == nil {
		t.Errorf("no certificate: answered %q", got)
	}
	// A certificate from another CA: refused.
	if got, err := get(t, other.Load("coordinator", true).ClientConfig(), srv.URL); err == nil {
		t.Errorf("other CA: answered %q", got)
	}
	// A server whose certificate another CA signed is not trusted.
	if got, err := get(t, ca.Load("coordinator", true).ClientConfig(), serve(t, other.Load("flights", true), true).URL); err == nil {
		t.Errorf("server of another CA trusted: %q", got)
	}

	// Optional client certificates: none gives 401 from the handler, another
	// CA's still fails the handshake.
	opt := serve(t, server, false)
	if got, err := get(t, &tls.Config{RootCAs: server.CAs}, opt.URL); err != nil || !strings.HasPrefix(got, "401") {
		t.Errorf("optional, none: %q %v", got, err)
	}
	if got, err := get(t, other.Load("alice", false).ClientConfig(), opt.URL); err == nil {
		t.Errorf("optional, other CA: answered %q", got)
	}
}

func TestLoadTLSErrors(t *testing.T) {
	ca := pki.New(t, "test CA")
	other := pki.New(t, "other CA")
	f := ca.Files("flights", true)
	o := other.Files("flights", true)
	for _, c := range []struct {
		name  string
		files security.TLSFiles
		want  string
	}{
		{"no cert", security.TLSFiles{Key: f.Key, CA: f.CA}, "no certificate file"},
		{"no key", security.TLSFiles{Cert: f.Cert, CA: f.CA}, "no key file"},
		{"no CA", security.TLSFiles{Cert: f.Cert, Key: f.Key}, "no CA file"},
		{"missing cert", security.TLSFiles{Cert: f.Cert + ".x", Key: f.Key, CA: f.CA}, "flights.pem.x"},
		{"key of another", security.TLSFiles{Cert: f.Cert, Key: o.Key, CA: f.CA}, "private key does not match"},
		{"CA not PEM", security.TLSFiles{Cert: f.Cert, Key: f.Key, CA: f.Key}, "holds no PEM certificate"},
		{"other CA", security.TLSFiles{Cert: f.Cert, Key: f.Key, CA: o.CA}, "is not signed by the CA"},
	} {
		_, err := security.LoadTLS(c.files)
		if !errors.Is(err, security.ErrBadTLSFiles) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrBadTLSFiles with %q", c.name, err, c.want)
		}
	}
}

func TestWriteDevPKI(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	paths, err := security.WriteDevPKI(dir, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) != 18 {
		t.Errorf("%d files written, want 18: %v", len(paths), paths)
	}
	for _, n := range []string{"coordinator", "flights", "hotels", "cars", "client", "operator"} {
		m, err := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, n+".pem"), Key: filepath.Join(dir, n+"-key.pem"), CA: filepath.Join(dir, "ca.pem")})
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if m.Identity != n {
			t.Errorf("identity %q, want %q", m.Identity, n)
		}
		if leaf := m.Cert.Leaf; leaf.VerifyHostname("127.0.0.1") != nil || leaf.VerifyHostname("localhost") != nil {
			t.Errorf("%s: no SAN for 127.0.0.1 and localhost", n)
		}
		if fi, _ := os.Stat(filepath.Join(dir, n+"-key.pem")); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s key mode %v", n, fi.Mode().Perm())
		}
	}
	toks, err := security.LoadTokens(filepath.Join(dir, "tokens.txt"))
	if err != nil || toks.Len() != 2 || len(toks.Operators()) != 1 {
		t.Errorf("tokens: %v %d", err, toks.Len())
	}
	// A client certificate cannot serve.
	cl, _ := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	srv := serve(t, cl, false)
	if got, err := get(t, &tls.Config{RootCAs: cl.CAs}, srv.URL); err == nil {
		t.Errorf("client certificate served: %q", got)
	}
	if _, err := security.WriteDevPKI(dir, false, time.Now()); !errors.Is(err, security.ErrExists) {
		t.Errorf("second run without force: %v", err)
	}
	if _, err := security.WriteDevPKI(dir, true, time.Now()); err != nil {
		t.Errorf("with force: %v", err)
	}
}

// The PKCS #12 bundles certs init writes, decoded with the password it
// wrote, hold the client's and the operator's certificate and key and the
// CA (as a browser imports them); presented to a server of the development
// PKI, the operator's authenticates as the operator the token file names.
func TestDevPKIPKCS12(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if _, err := security.WriteDevPKI(dir, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	pass, err := os.ReadFile(filepath.Join(dir, security.DevPKI.P12Password))
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pass))
	if len(password) < 32 {
		t.Fatalf("password %q is short", password)
	}
	toks, err := security.LoadTokens(filepath.Join(dir, security.DevPKI.Tokens))
	if err != nil {
		t.Fatal(err)
	}
	coord, err := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, "coordinator.pem"), Key: filepath.Join(dir, "coordinator-key.pem"), CA: filepath.Join(dir, "ca.pem")})
	if err != nil {
		t.Fatal(err)
	}
	a := &security.Authenticator{Tokens: toks}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := a.Authenticate(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		fmt.Fprintf(w, "%s operator=%v via=%s", p.Name, p.Operator, p.Via)
	}))
	srv.TLS = coord.ServerConfig(false)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ name, want string }{
		{"operator", "200 OK operator operator=true via=certificate"},
		{"client", "200 OK client operator=false via=certificate"},
	} {
		p12 := filepath.Join(dir, tc.name+".p12")
		if fi, err := os.Stat(p12); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", p12, err, fi)
		}
		raw, _ := os.ReadFile(p12)
		if _, _, _, err := pkcs12.DecodeChain(raw, "wrong"); err == nil {
			t.Fatalf("%s opens with a wrong password", p12)
		}
		key, cert, cas, err := pkcs12.DecodeChain(raw, password)
		if err != nil {
			t.Fatalf("%s: %v", p12, err)
		}
		if cert.Subject.CommonName != tc.name || len(cas) != 1 || !cas[0].IsCA {
			t.Fatalf("%s: certificate of %q, %d CA certificates", p12, cert.Subject.CommonName, len(cas))
		}
		cfg := &tls.Config{RootCAs: coord.CAs, Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}}
		if got, err := get(t, cfg, srv.URL); err != nil || got != tc.want {
			t.Errorf("%s: %q %v, want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestVerifyPeer(t *testing.T) {
	ca := pki.New(t, "test CA")
	srv := serve(t, ca.Load("flights", true), true)
	me := ca.Load("coordinator", true)
	if got, err := get(t, me.ClientConfigFor(security.RoleParticipant, "flights"), srv.URL); err != nil || got != "200 OK coordinator" {
		t.Errorf("flights as flights: %q %v", got, err)
	}
	if got, err := get(t, me.ClientConfigFor(security.RoleParticipant, "hotels"), srv.URL); !errors.Is(err, security.ErrWrongPeer) {
		t.Errorf("flights as hotels: %q %v, want ErrWrongPeer", got, err)
	}
}
