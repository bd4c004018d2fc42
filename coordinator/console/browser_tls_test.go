package console_test

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/internal/testutil/pki"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// The console of a coordinator under TLS with authentication: before
// signing in it says "not authenticated" (the coordinator answered 401),
// never "not answering"; a wrong token is refused with the reason; an
// operator token signs in, is kept in the tab's session (a reload stays
// signed in), and the console's POST (retry now) passes the CSRF checks
// with it; signing out forgets it.
func TestConsoleSignInUnderTLS(t *testing.T) {
	// The test CA is not in the browser's store: the browser takes any
	// server certificate (the TLS connection itself is real).
	ctx := browser(t, chromedp.Flag("ignore-certificate-errors", true))

	ca := pki.New(t, "console test CA")
	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	toks, err := security.ParseTokens(strings.NewReader("ops ops-token-0123456789 operator\nalice alice-token-0123456789\n"))
	if err != nil {
		t.Fatal(err)
	}
	coord := ca.Load("coordinator", true)
	c, err := coordinator.New(coordinator.Options{
		Dir: "/coordinator", FS: memfs.New(),
		Participants: map[string]string{"flights": flights.URL, "hotels": hotels.URL},
		RetryMin:     time.Hour, RetryMax: time.Hour, // only the operator retries in this test
		CompactInterval: time.Hour,
		TLS:             coord.ServerConfig(false), // the participants are plain fakes: only the console side is TLS
		Auth:            &security.Authenticator{Tokens: toks},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	base := c.URL()
	if !strings.HasPrefix(base, "https://") {
		t.Fatalf("coordinator URL %s, want https", base)
	}
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	resp, err := c.Submit(context.Background(), wire.SubmitRequest{ID: "trip-tls", Branches: []wire.Branch{
		{Participant: "flights", Payload: json.RawMessage(`{"sku":"X","quantity":1}`)},
		{Participant: "hotels", Payload: json.RawMessage(`{"sku":"Y","quantity":1}`)},
	}})
	if err != nil || resp.Outcome != concord.OutcomeCommitted {
		t.Fatalf("submit: %+v %v", resp, err)
	}

	step(t, ctx, "open the console", chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/ui/#/"),
		chromedp.WaitVisible(chromedp.CSS(`#signin-token`)))
	if s := text(t, ctx, `#refresh-status`); !strings.Contains(s, "not authenticated") || strings.Contains(s, "not answering") {
		t.Fatalf("status before sign-in reads %q, want \"not authenticated\"", s)
	}
	shot(t, ctx, "signin")

	// A token the coordinator does not know is refused, with the reason.
	step(t, ctx, "sign in with a wrong token",
		chromedp.SendKeys(chromedp.CSS(`#signin-token`), "wrong-token-0123456789"),
		chromedp.Click(chromedp.CSS(`#signin-submit`)),
		chromedp.Poll[chromedp.Void](`document.getElementById("signin-why").textContent.includes("not accepted")`))
	if s := text(t, ctx, `#signin-why`); !strings.Contains(s, "not authenticated") {
		t.Errorf("the refusal reads %q, without the coordinator's reason", s)
	}

	step(t, ctx, "sign in with the operator's token",
		chromedp.SendKeys(chromedp.CSS(`#signin-token`), "ops-token-0123456789"),
		chromedp.Click(chromedp.CSS(`#signin-submit`)),
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="flights"]`)),
		chromedp.WaitNotVisible(chromedp.CSS(`#signin`)),
		chromedp.WaitVisible(chromedp.CSS(`#signout`)))
	if s := text(t, ctx, `#refresh-status`); !strings.Contains(s, "updated") {
		t.Errorf("status after sign-in reads %q", s)
	}
	shot(t, ctx, "signed-in-overview")

	// The token is kept for the tab: a reload stays signed in.
	step(t, ctx, "reload, still signed in", chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="hotels"]`)))

	// A POST from the console carries the token and JSON, same-origin:
	// the CSRF checks let it through and the retry finishes trip-tls.
	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	step(t, ctx, "retry trip-tls from its page", goTo("#/tx/trip-tls"),
		chromedp.WaitEnabled(chromedp.CSS(`#btn-retry`)),
		chromedp.Click(chromedp.CSS(`#btn-retry`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm[open] #confirm-ok`)),
		chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="operator-retry"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="acknowledged"][data-participant="hotels"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#action-msg.ok`)))
	if st, err := c.Status("trip-tls"); err != nil || !st.Done {
		t.Fatalf("trip-tls after the console's retry: %+v %v", st, err)
	}

	// Signing out forgets the token: the next poll is not authenticated.
	step(t, ctx, "sign out", chromedp.Click(chromedp.CSS(`#signout`)),
		chromedp.WaitVisible(chromedp.CSS(`#signin-token`)))
	step(t, ctx, "reload, signed out", chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#signin-token`)))
	if s := text(t, ctx, `#refresh-status`); !strings.Contains(s, "not authenticated") {
		t.Fatalf("status after sign-out reads %q", s)
	}
}
