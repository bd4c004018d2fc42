package participant_test

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/security"
)

// chanHandler sends every log record's message and attributes to ch.
type chanHandler struct{ ch chan string }

func (h chanHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h chanHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	h.ch <- b.String()
	return nil
}
func (h chanHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h chanHandler) WithGroup(string) slog.Handler      { return h }

// TestRecoveredAsksOnlyTheTrustedIdentity: after a restart a transaction is
// asked about at the coordinator its PREPARE named, and only while the
// participant trusts the identity it trusted then; one prepared under
// another identity stays in doubt (nobody is asked, the failure is
// reported) rather than hear presumed abort from a coordinator that never
// ran it.
func TestRecoveredAsksOnlyTheTrustedIdentity(t *testing.T) {
	// Under TLS (CoordinatorIdentity set) only an https coordinator proving
	// the coordinator identity is asked: both fakes prove it.
	ca := pki.New(t, "test CA")
	serverTLS := func() *tls.Config {
		cfg := ca.LoadRole("coordinator", security.RoleCoordinator).ServerConfig(false)
		cfg.ClientAuth = tls.NoClientCert
		return cfg
	}
	named := participanttest.NewFakeCoordinatorTLS(t, serverTLS())
	configured := participanttest.NewFakeCoordinatorTLS(t, serverTLS())
	trusting, terr := security.WithClientTLS(&http.Client{Timeout: 10 * time.Second}, ca.Load("flights", true).ClientConfig())
	if terr != nil {
		t.Fatal(terr)
	}
	mem := participanttest.NewMemResource()
	ctx := context.Background()
	deadline := time.Now().Add(time.Minute)
	for _, p := range []struct {
		id       concord.TxID
		identity string
	}{{"same", "coordinator"}, {"other", "old-coordinator"}} {
		info := participant.PrepareInfo{Deadline: deadline, Coordinator: participant.CoordinatorRef{URLs: []string{named.URL()}, Identity: p.identity}}
		if r, err := mem.Prepare(ctx, p.id, participanttest.YesPayload(1), info); err != nil || r.Vote != concord.VoteYes {
			t.Fatalf("Prepare(%s) = %+v, %v", p.id, r, err)
		}
	}
	logs := make(chan string, 64)
	srv, err := participant.NewServer(participant.Options{Resource: mem, Coordinator: configured.URL(),
		CoordinatorIdentity: "coordinator", HTTPClient: trusting, Logger: slog.New(chanHandler{logs}),
		Clock: participanttest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	if err := srv.Start(ctx); err != nil { // recovers both and asks at once
		t.Fatal(err)
	}
	if id := recv(t, named.Queries, "a query"); id != "same" {
		t.Fatalf("asked %s about %s", named.URL(), id)
	}
	for {
		l := recv(t, logs, "the failed query of the other one")
		if strings.Contains(l, "query failed") && strings.Contains(l, "tx=other") {
			if !strings.Contains(l, "old-coordinator") {
				t.Fatalf("the failure does not name the identity: %s", l)
			}
			break
		}
	}
	if len(named.Queries) != 0 || len(configured.Queries) != 0 {
		t.Fatalf("queries beyond the one: %d at the named coordinator, %d at the configured one", len(named.Queries), len(configured.Queries))
	}
	if mem.State("other") != "prepared" {
		t.Fatalf("the one prepared under another identity is %q, want still prepared", mem.State("other"))
	}
}
