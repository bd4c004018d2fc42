package participant_test

import (
	"crypto/tls"
	"encoding/json"
	"github.com/concordtx/concord/internal/apicheck"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// A participant under mutual TLS takes PREPARE, COMMIT and ABORT from the
// coordinator's identity only; a forged or replayed decision changes nothing.
func TestOnlyTheCoordinatorDecides(t *testing.T) {
	ca, other := pki.New(t, "test CA"), pki.New(t, "other CA")
	mem := participanttest.NewMemResource()
	srv, err := participant.NewServer(participant.Options{Resource: mem, CoordinatorIdentity: "coordinator", MaxBodyBytes: 2048})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	own := ca.Load("flights", true)
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = own.ServerConfig(true)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes
	hs.StartTLS()
	defer hs.Close()

	as := func(cert *security.TLS) *http.Client {
		cfg := &tls.Config{RootCAs: own.CAs}
		if cert != nil {
			c := cert.Cert
			cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
		}
		hc, _ := checkedTLSClient(cfg)
		return hc
	}
	post := func(hc *http.Client, path, body string) (int, string, error) {
		resp, err := hc.Post(hs.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	prepare := `{"transactions":[{"id":"t1","payload":{"n":1}}]}`
	coord := as(ca.Load("coordinator", true))

	// Refused at the handshake: no certificate, another CA's (even one
	// naming the coordinator).
	for name, hc := range map[string]*http.Client{"no certificate": as(nil), "other CA": as(other.Load("coordinator", true))} {
		if code, body, err := post(hc, wire.PathPrepare, prepare); err == nil {
			t.Errorf("%s: answered %d %s", name, code, body)
		}
	}
	// Refused by identity: a client, another participant.
	for _, name := range []string{"client", "hotels"} {
		code, body, err := post(as(ca.Load(name, false)), wire.PathPrepare, prepare)
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, name+" is not the coordinator") {
			t.Errorf("%s posing as the coordinator: %d %s %v", name, code, body, err)
		}
	}
	if st := mem.State("t1"); st != "" {
		t.Fatalf("a refused PREPARE reached the resource: %s", st)
	}

	// The coordinator prepares t1; a forged COMMIT from a client is refused
	// and t1 stays prepared.
	if code, body, err := post(coord, wire.PathPrepare, prepare); err != nil || code != 200 || !strings.Contains(body, `"yes"`) {
		t.Fatalf("coordinator's prepare: %d %s %v", code, body, err)
	}
	if code, body, err := post(as(ca.Load("mallory", false)), wire.PathCommit, `{"ids":["t1"]}`); err != nil || code != http.StatusForbidden {
		t.Errorf("forged commit: %d %s %v", code, body, err)
	}
	if st := mem.State("t1"); st != "prepared" {
		t.Fatalf("after a forged commit t1 is %q, want prepared", st)
	}
	// The coordinator aborts it; a replayed COMMIT, even from the
	// coordinator's identity, is refused and t1 stays aborted.
	if code, body, err := post(coord, wire.PathAbort, `{"ids":["t1"]}`); err != nil || code != 200 || !strings.Contains(body, `"t1"`) {
		t.Fatalf("abort: %d %s %v", code, body, err)
	}
	code, body, err := post(coord, wire.PathCommit, `{"ids":["t1"]}`)
	var dr wire.DecisionResponse
	json.Unmarshal([]byte(body), &dr)
	if err != nil || code != 200 || len(dr.Acknowledged) != 0 || len(dr.Failed) != 1 || dr.Failed[0].ID != "t1" {
		t.Errorf("COMMIT after ABORT: %d %s %v, want t1 failed", code, body, err)
	}
	if st := mem.State("t1"); st != "aborted" {
		t.Fatalf("after a replayed commit t1 is %q, want aborted", st)
	}
	// A body past the limit is 413; the next valid request succeeds.
	if code, body, _ := post(coord, wire.PathPrepare, `{"transactions":[{"id":"t2","payload":"`+strings.Repeat("x", 4096)+`"}]}`); code != http.StatusRequestEntityTooLarge {
		t.Errorf("big body: %d %s", code, body)
	}
	if code, body, _ := post(coord, wire.PathPrepare, `{"transactions":[{"id":"t3","payload":{"n":3}}]}`); code != 200 || !strings.Contains(body, `"yes"`) {
		t.Errorf("after a big body: %d %s", code, body)
	}
	if st := srv.Status(); st.Refused != 3 {
		t.Errorf("Refused = %d, want 3 (client, hotels, mallory)", st.Refused)
	}
}

// Over plain HTTP a participant expecting a coordinator identity takes no
// protocol request at all.
func TestCoordinatorIdentityNeedsTLS(t *testing.T) {
	mem := participanttest.NewMemResource()
	srv, err := participant.NewServer(participant.Options{Resource: mem, CoordinatorIdentity: "coordinator"})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	for _, path := range []string{wire.PathPrepare, wire.PathCommit, wire.PathAbort} {
		resp, err := http.Post(hs.URL+path, "application/json", strings.NewReader(`{"ids":["t1"],"transactions":[{"id":"t1"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s over plain HTTP: %d, want 401", path, resp.StatusCode)
		}
	}
	if st := mem.State("t1"); st != "" {
		t.Errorf("t1 reached the resource: %s", st)
	}
}

// tlsParticipant serves a participant whose coordinator is known by
// identity "coordinator" over mutual TLS, and returns a client presenting
// the coordinator's certificate.
func tlsParticipant(t *testing.T, ca *pki.PKI, opts participant.Options) (*participant.Server, *httptest.Server, *http.Client) {
	t.Helper()
	opts.CoordinatorIdentity = "coordinator"
	srv, err := participant.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	own := ca.Load("flights", true)
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = own.ServerConfig(true)
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	t.Cleanup(hs.Close)
	hc, err := checkedTLSClient(ca.Load("coordinator", true).ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	return srv, hs, hc
}

// Under TLS a participant never follows plain http to a coordinator: a
// PREPARE naming an http coordinator is answered 400 and no vote, and
// an http Options.Coordinator is refused.
func TestTLSParticipantRefusesPlainCoordinator(t *testing.T) {
	ca := pki.New(t, "test CA")
	mem := participanttest.NewMemResource()
	_, hs, coord := tlsParticipant(t, ca, participant.Options{Resource: mem})
	resp, err := coord.Post(hs.URL+wire.PathPrepare, "application/json",
		strings.NewReader(`{"coordinator":"http://127.0.0.2:9","transactions":[{"id":"t1","payload":{"n":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(string(b), `"yes"`) || !strings.Contains(string(b), "https") {
		t.Errorf("PREPARE naming an http coordinator: %d %s, want 400", resp.StatusCode, b)
	}
	if st := mem.State("t1"); st != "" {
		t.Errorf("the refused PREPARE reached the resource: %s", st)
	}
	resp, err = coord.Post(hs.URL+wire.PathPrepare, "application/json",
		strings.NewReader(`{"coordinator":"https://127.0.0.1:9","transactions":[{"id":"t2","payload":{"n":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"yes"`) {
		t.Errorf("PREPARE naming an https coordinator: %d %s", resp.StatusCode, b)
	}
	if _, err := participant.NewServer(participant.Options{Resource: mem, CoordinatorIdentity: "coordinator",
		Coordinator: "http://127.0.0.1:7070"}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("an http Coordinator under TLS: %v", err)
	}
}

// A certificate whose name says coordinator but whose role does not (here
// the client role) cannot decide.
func TestCoordinatorRoleRequired(t *testing.T) {
	ca := pki.New(t, "test CA")
	mem := participanttest.NewMemResource()
	_, hs, coord := tlsParticipant(t, ca, participant.Options{Resource: mem})
	resp, err := coord.Post(hs.URL+wire.PathPrepare, "application/json", strings.NewReader(`{"transactions":[{"id":"t1","payload":{"n":1}}]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("prepare: %v %v", resp, err)
	}
	resp.Body.Close()
	impostor, err := checkedTLSClient(ca.LoadRole("coordinator", security.RoleClient).ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	resp, err = impostor.Post(hs.URL+wire.PathCommit, "application/json", strings.NewReader(`{"ids":["t1"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("commit by a client certificate named coordinator: %d, want 403", resp.StatusCode)
	}
	if st := mem.State("t1"); st != "prepared" {
		t.Errorf("t1 is %q, want prepared", st)
	}
}

// A participant in doubt takes an outcome only from a server that proves
// to be the coordinator (a verified certificate in the coordinator role
// naming CoordinatorIdentity), even with an HTTPClient that trusts the CA
// and checks nothing more: an impostor of the same CA (a participant's
// certificate named coordinator) answering committed is not believed.
func TestInDoubtAsksOnlyTheCoordinator(t *testing.T) {
	ca := pki.New(t, "test CA")
	var hits atomic.Int64
	impostor := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		wire.WriteJSON(w, 200, wire.OutcomeResponse{ID: "t1", Outcome: concord.OutcomeCommitted})
	}))
	impostor.TLS = ca.LoadRole("coordinator", security.RoleParticipant).ServerConfig(false)
	impostor.TLS.ClientAuth = tls.NoClientCert
	impostor.Config.ErrorLog = log.New(io.Discard, "", 0)
	impostor.StartTLS()
	defer impostor.Close()
	trusting, err := checkedTLSClient(ca.Load("flights", true).ClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	clock := participanttest.NewFakeClock(time.Unix(1_000_000, 0))
	mem := participanttest.NewMemResource()
	srv, hs, coord := tlsParticipant(t, ca, participant.Options{Resource: mem, Clock: clock, HTTPClient: trusting,
		Coordinator: impostor.URL, InDoubtAfter: time.Second})
	resp, err := coord.Post(hs.URL+wire.PathPrepare, "application/json", strings.NewReader(`{"transactions":[{"id":"t1","payload":{"n":1}}]}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("prepare: %v %v", resp, err)
	}
	resp.Body.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		clock.Advance(2 * time.Second)
		if d := srv.InDoubt(); len(d) == 1 && strings.Contains(d[0].LastError, "did not prove") {
			break
		}
		if st := mem.State("t1"); st != "prepared" {
			t.Fatalf("t1 is %s after the impostor's answer (%d queries answered)", st, hits.Load())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refused outcome query: %+v", srv.InDoubt())
		}
		time.Sleep(time.Millisecond) // the in-doubt loop runs on its own goroutine
	}
	if st := mem.State("t1"); st != "prepared" {
		t.Errorf("t1 is %s, want prepared", st)
	}
}

// checkedTLSClient is an https client with cfg whose every exchange is
// validated against the OpenAPI documents.
func checkedTLSClient(cfg *tls.Config) (*http.Client, error) {
	hc, err := security.WithClientTLS(&http.Client{Timeout: 10 * time.Second}, cfg)
	if err != nil {
		return nil, err
	}
	return apicheck.Default.Client(hc), nil
}
