package client_test

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/apicheck"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// The whole path under mutual TLS: clients authenticate to the coordinator
// with a certificate or a token, the coordinator to real participant
// servers with its certificate; each client sees only its own.
func TestSecureEndToEnd(t *testing.T) {
	ca := pki.New(t, "test CA")
	urls := map[string]string{}
	mems := map[string]*participanttest.MemResource{}
	clock := testutil.NewFakeClock(time.Unix(0, 0)) // the coordinator's and the resources': deadlines are by it
	for _, n := range []string{"flights", "hotels"} {
		mems[n] = participanttest.NewMemResource()
		mems[n].Now = clock.Now
		srv, err := participant.NewServer(participant.Options{Resource: mems[n], CoordinatorIdentity: "coordinator"})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewUnstartedServer(srv.Handler())
		hs.TLS = ca.Load(n, true).ServerConfig(true)
		hs.Config.ErrorLog = log.New(io.Discard, "", 0)
		hs.StartTLS()
		t.Cleanup(func() { hs.Close(); srv.Close() })
		urls[n] = hs.URL
	}
	toks, err := security.ParseTokens(strings.NewReader("alice alice-token-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	coord := ca.Load("coordinator", true)
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), Participants: urls,
		Clock: clock, DecisionDelay: -1, ShutdownTimeout: time.Second,
		TLS: coord.ServerConfig(false), ClientTLS: coord.ClientConfig(), Auth: &security.Authenticator{Tokens: toks}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })

	alice, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL(), Token: "alice-token-0123456789", TLS: &tls.Config{RootCAs: coord.CAs}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL(), TLS: ca.Load("bob", false).ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	nobody, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL(), TLS: &tls.Config{RootCAs: coord.CAs}})
	if err != nil {
		t.Fatal(err)
	}
	req := wire.SubmitRequest{ID: "trip-a", Branches: []wire.Branch{
		{Participant: "flights", Payload: participanttest.YesPayload(1)}, {Participant: "hotels", Payload: participanttest.YesPayload(2)}}}
	resp, err := alice.Submit(t.Context(), req)
	if err != nil || resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("alice's trip: %+v %v", resp, err)
	}
	for n, m := range mems {
		waitState(t, m, "trip-a", "committed", n)
	}
	if _, err := bob.Get(t.Context(), "trip-a"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("bob reads alice's trip: %v, want ErrForbidden", err)
	}
	if _, err := bob.Abort(t.Context(), "trip-a"); !errors.Is(err, client.ErrForbidden) {
		t.Errorf("bob aborts alice's trip: %v, want ErrForbidden", err)
	}
	if _, err := nobody.Submit(t.Context(), wire.SubmitRequest{ID: "trip-n", Branches: req.Branches}); !errors.Is(err, client.ErrUnauthorized) {
		t.Errorf("no credentials: %v, want ErrUnauthorized", err)
	}
	if st, err := alice.Get(t.Context(), "trip-a"); err != nil || st.State != "committed" {
		t.Errorf("alice reads her trip: %+v %v", st, err)
	}
	if l, err := bob.List(t.Context(), "all", 10); err != nil || len(l.Transactions) != 0 {
		t.Errorf("bob's list: %+v %v", l, err)
	}
}

// A participant whose COMMIT was lost asks the coordinator over mutual TLS,
// as a branch of the transaction, and learns it committed.
func TestInDoubtQueryOverMutualTLS(t *testing.T) {
	ca := pki.New(t, "test CA")
	urls := map[string]string{}
	mems := map[string]*participanttest.MemResource{}
	var dropCommits atomic.Bool
	dropCommits.Store(true)
	for _, n := range []string{"flights", "hotels"} {
		mems[n] = participanttest.NewMemResource()
		own := ca.Load(n, true)
		hc, err := security.WithClientTLS(wire.NewHTTPClient(0), own.ClientConfig())
		if err != nil {
			t.Fatal(err)
		}
		srv, err := participant.NewServer(participant.Options{Resource: mems[n], CoordinatorIdentity: "coordinator", HTTPClient: hc,
			InDoubtAfter: 20 * time.Millisecond, TickInterval: 5 * time.Millisecond, QueryMin: 5 * time.Millisecond, QueryMax: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Start(t.Context()); err != nil {
			t.Fatal(err)
		}
		h := srv.Handler()
		hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n == "flights" && r.URL.Path == wire.PathCommit && dropCommits.Load() {
				http.Error(w, "lost", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		}))
		hs.TLS = own.ServerConfig(true)
		hs.Config.ErrorLog = log.New(io.Discard, "", 0)
		hs.StartTLS()
		t.Cleanup(func() { hs.Close(); srv.Close() })
		urls[n] = hs.URL
	}
	coord := ca.Load("coordinator", true)
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), Participants: urls,
		ShutdownTimeout: time.Second, RetryMin: time.Hour, RetryMax: time.Hour,
		TLS: coord.ServerConfig(false), ClientTLS: coord.ClientConfig(), Auth: &security.Authenticator{}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL(), TLS: ca.Load("alice", false).ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Submit(t.Context(), wire.SubmitRequest{ID: "lost-commit", Branches: []wire.Branch{
		{Participant: "flights", Payload: participanttest.YesPayload(1)}, {Participant: "hotels", Payload: participanttest.YesPayload(2)}}})
	if err != nil || resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("submit: %+v %v", resp, err)
	}
	// The coordinator retries only in an hour: flights learns the outcome by
	// asking. Polled: the query travels over real sockets.
	waitState(t, mems["flights"], "lost-commit", "committed", "flights (its outcome query did not get through)")
	if st := c.Stats(); st.Unauthenticated != 0 || st.Forbidden != 0 {
		t.Errorf("refusals on the way: %+v", st)
	}
}

// The coordinator calls a participant only if the server's certificate
// names that participant: hotels answering at flights' address gets no
// PREPARE meant for flights, and the transaction aborts.
func TestCoordinatorChecksParticipantIdentity(t *testing.T) {
	ca := pki.New(t, "test CA")
	mem := participanttest.NewMemResource()
	clock := testutil.NewFakeClock(time.Unix(0, 0)) // the coordinator's and the resource's
	mem.Now = clock.Now
	srv, err := participant.NewServer(participant.Options{Resource: mem, CoordinatorIdentity: "coordinator"})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	hs.TLS = ca.Load("hotels", true).ServerConfig(true) // not flights
	hs.Config.ErrorLog = log.New(io.Discard, "", 0)
	hs.StartTLS()
	t.Cleanup(func() { hs.Close(); srv.Close() })
	coord := ca.Load("coordinator", true)
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), Participants: map[string]string{"flights": hs.URL, "hotels": hs.URL},
		Clock: clock, DecisionDelay: -1, ShutdownTimeout: time.Second,
		TLS: coord.ServerConfig(false), ClientTLS: coord.ClientConfig(), Auth: &security.Authenticator{}})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: c.URL(), TLS: ca.Load("alice", false).ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cl.Submit(t.Context(), wire.SubmitRequest{ID: "impostor", Branches: []wire.Branch{
		{Participant: "flights", Payload: participanttest.YesPayload(1)}, {Participant: "hotels", Payload: participanttest.YesPayload(2)}}})
	if err != nil || resp.Outcome != concord.OutcomeAborted || resp.Branches[0].Vote != concord.VoteUnreachable ||
		!strings.Contains(resp.Branches[0].Reason, "another identity") {
		t.Errorf("submit with an impostor as flights: %+v %v", resp, err)
	}
	if st := mem.State("impostor"); st == "committed" {
		t.Errorf("hotels' branch committed")
	}
}

// waitState polls m until transaction id is in state want. The decision
// reaches a participant after the client's answer, over real sockets:
// there is nothing to wait on but the state.
func waitState(t *testing.T, m *participanttest.MemResource, id concord.TxID, want, who string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for m.State(id) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s is %q, want %q", who, id, m.State(id), want)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// The client sends its token over https only, to the coordinator's host
// only, and follows no redirect: a coordinator URL (or a redirect) that
// leads elsewhere never gets the token.
func TestTokenStaysWithTheCoordinator(t *testing.T) {
	if _, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: "http://127.0.0.1:7070", Token: "alice-token-0123456789"}); !errors.Is(err, client.ErrInvalidInput) {
		t.Errorf("a token with an http URL: %v, want ErrInvalidInput", err)
	}
	ca := pki.New(t, "test CA")
	var elsewhere atomic.Int64
	other := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			elsewhere.Add(1)
		}
		w.Write([]byte(`{"status":"ok"}`))
	}))
	other.TLS = ca.Load("other", true).ServerConfig(false)
	other.Config.ErrorLog = log.New(io.Discard, "", 0)
	other.StartTLS()
	defer other.Close()
	redirector := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	redirector.TLS = ca.Load("coordinator", true).ServerConfig(false)
	redirector.Config.ErrorLog = log.New(io.Discard, "", 0)
	redirector.StartTLS()
	defer redirector.Close()
	cl, err := client.New(client.Options{WrapTransport: apicheck.Default.Transport, URL: redirector.URL, Token: "alice-token-0123456789", TLS: ca.Load("alice", false).ClientConfig()})
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.Health(t.Context()); !errors.Is(err, security.ErrRedirect) {
		t.Errorf("a redirect: %v, want ErrRedirect", err)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the token reached another host %d times", n)
	}
}
