package coordinator_test

import (
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// The cost of TLS and authentication on one client's submits (keep-alive
// connections: the handshake is paid once), two participant doubles over
// plain HTTP: plain HTTP against HTTPS with a bearer token.
func BenchmarkSubmitPlainHTTP(b *testing.B) { benchSubmit(b, false) }

func BenchmarkSubmitTLSToken(b *testing.B) { benchSubmit(b, true) }

func benchSubmit(b *testing.B, secure bool) {
	urls := map[string]string{}
	for _, n := range []string{"flights", "hotels"} {
		urls[n] = testutil.NewParticipant(b, n).URL
	}
	opts := coordinator.Options{Dir: "/c", FS: memfs.New(), Participants: urls, Clock: testutil.NewFakeClock(epoch),
		ShutdownTimeout: time.Second, CompactInterval: time.Hour, DecisionDelay: -1} // the fake clock never moves: decisions leave at once
	hc := &http.Client{Timeout: 10 * time.Second}
	if secure {
		ca := pki.New(b, "bench CA")
		srv := ca.Load("coordinator", true)
		toks, err := security.ParseTokens(strings.NewReader("alice " + aliceToken + "\n"))
		if err != nil {
			b.Fatal(err)
		}
		opts.TLS, opts.Auth = srv.ServerConfig(false), &security.Authenticator{Tokens: toks}
		if hc, err = security.WithClientTLS(hc, &tls.Config{RootCAs: srv.CAs}); err != nil {
			b.Fatal(err)
		}
		hc.Transport = &security.BearerTransport{Token: aliceToken, Base: hc.Transport}
	}
	c, err := coordinator.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		code, msg, err := do(hc, "POST", c.URL()+wire.PathTransactions, submitBody(concord.TxID(fmt.Sprintf("b-%d", i)), "flights", "hotels"))
		if err != nil || code != 200 {
			b.Fatalf("%d %s %v", code, msg, err)
		}
	}
}
