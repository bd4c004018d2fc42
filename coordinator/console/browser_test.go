package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// chromiumPath is Debian's chromium package; .ci/run installs it.
const chromiumPath = "/usr/bin/chromium"

// browser starts a headless chromium for the test and returns a chromedp
// context on one tab. Outside CI it skips when chromium is missing; in CI
// (CI=true) a missing browser fails the test.
func browser(t *testing.T, extra ...chromedp.ExecAllocatorOption) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is required in CI: %v (.ci/run installs it)", err)
		}
		t.Skipf("skipping the browser test: %s not found (apt-get install -y chromium)", chromiumPath)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	opts = append(opts, extra...)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, with no deadline of its own
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// step runs actions with a deadline, failing the test with what was being
// waited for.
func step(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		defer dcancel()
		page, _ := chromedp.Run(dctx, chromedp.Evaluate[string]("location.href + '\\n' + document.body.innerText"))
		t.Fatalf("%s: %v\npage now:\n%s", what, err, page)
	}
}

// shot saves a PNG of the viewport to $CONCORD_SCREENSHOTS/name.png when
// that variable names a directory, for people to look at.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("CONCORD_SCREENSHOTS")
	if dir == "" {
		return
	}
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// waitDone polls until the coordinator needs nothing more for id: its
// acknowledgements travel over real sockets, so there is no event to wait on.
func waitDone(t *testing.T, c *coordinator.Coordinator, id concord.TxID) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st, err := c.Status(id); err == nil && st.Done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not done", id)
		}
		time.Sleep(time.Millisecond) // polling real sockets, see above
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(sctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

// go to a view of the console: the views are chosen by the URL fragment.
func goTo(fragment string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Run(ctx, chromedp.Evaluate[any](fmt.Sprintf("location.hash = %q", fragment)))
		return err
	})
}

// The console in a real browser: the list shows a transaction just run,
// its timeline shows its votes, the overview shows a participant that is
// down, and "retry now" (confirmed in the dialog) finishes a transaction
// whose participant was down and came back.
func TestConsoleInABrowser(t *testing.T) {
	ctx := browser(t)

	flights := testutil.NewParticipant(t, "flights")
	hotels := testutil.NewParticipant(t, "hotels")
	cars := testutil.NewParticipant(t, "cars")
	cars.SetVote(func(concord.TxID, json.RawMessage) (concord.Vote, string) {
		return concord.VoteNo, "C-SUV: not enough left (0 available, 1 asked)"
	})
	cars.SetPathMode(wire.PathHealth, testutil.Silent) // answers the protocol, not the probes
	c, err := coordinator.New(coordinator.Options{
		Dir: "/coordinator", FS: memfs.New(),
		Participants: map[string]string{"flights": flights.URL, "hotels": hotels.URL, "cars": cars.URL},
		RetryMin:     time.Hour, RetryMax: time.Hour, // only the operator retries in this test
		CompactInterval: time.Hour,
		ProbeInterval:   20 * time.Millisecond, ProbeTimeout: 100 * time.Millisecond, ProbeMax: 100 * time.Millisecond,
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
	submit := func(id string, parts ...string) wire.SubmitResponse {
		t.Helper()
		req := wire.SubmitRequest{ID: concord.TxID(id)}
		for _, p := range parts {
			req.Branches = append(req.Branches, wire.Branch{Participant: p, Payload: json.RawMessage(`{"sku":"X","quantity":1}`)})
		}
		resp, err := c.Submit(context.Background(), req)
		if err != nil {
			t.Fatalf("submit %s: %v", id, err)
		}
		return resp
	}
	if r := submit("trip-ok", "flights", "hotels"); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("trip-ok: %+v", r)
	}
	if r := submit("trip-no-car", "flights", "cars"); r.Outcome != concord.OutcomeAborted {
		t.Fatalf("trip-no-car: %+v", r)
	}
	waitDone(t, c, "trip-ok")
	hotels.SetPathMode(wire.PathCommit, testutil.Down)
	if r := submit("trip-stuck", "flights", "hotels"); r.Outcome != concord.OutcomeCommitted {
		t.Fatalf("trip-stuck: %+v", r)
	}

	// The list shows the transactions just run.
	step(t, ctx, "open the list", chromedp.EmulateViewport(1280, 900),
		chromedp.Navigate(base+"/ui/#/transactions?state=all"),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-ok"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-stuck"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-no-car"]`)))
	if row := text(t, ctx, `#tx-table tr[data-id="trip-ok"]`); !strings.Contains(row, "committed") {
		t.Errorf("trip-ok's row says %q", row)
	}
	shot(t, ctx, "transactions")

	// Filtered by participant: cars took part in trip-no-car only.
	step(t, ctx, "filter by cars", goTo("#/transactions?state=all&participant=cars"),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-no-car"]`)),
		chromedp.WaitNotPresent(chromedp.CSS(`#tx-table tr[data-id="trip-ok"]`)))

	// trip-ok's timeline shows both yes votes and the decision.
	step(t, ctx, "open trip-ok", goTo("#/tx/trip-ok"),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="vote"][data-participant="flights"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="vote"][data-participant="hotels"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="end"]`)))
	if v := text(t, ctx, `#timeline li[data-kind="vote"][data-participant="hotels"]`); !strings.Contains(v, "vote yes") {
		t.Errorf("hotels' vote reads %q", v)
	}
	if d := text(t, ctx, `#timeline li[data-kind="decision"]`); !strings.Contains(d, "committed") {
		t.Errorf("decision reads %q", d)
	}
	shot(t, ctx, "timeline-committed")

	// trip-no-car's timeline shows the no vote with its reason.
	step(t, ctx, "open trip-no-car", goTo("#/tx/trip-no-car"),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="vote"][data-participant="cars"]`)))
	if v := text(t, ctx, `#timeline li[data-kind="vote"][data-participant="cars"]`); !strings.Contains(v, "vote no") || !strings.Contains(v, "not enough left") {
		t.Errorf("cars' vote reads %q", v)
	}

	// The overview shows hotels failing, with trip-stuck pending.
	step(t, ctx, "overview", goTo("#/"),
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="hotels"] .b-failing`)),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-stuck"]`)))
	if row := text(t, ctx, `#participants tr[data-participant="hotels"]`); !strings.Contains(row, "failing") {
		t.Errorf("hotels' health row reads %q", row)
	}
	// The probes and the traffic are two views: cars answers its requests
	// but not the probes, flights both.
	step(t, ctx, "probe views",
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="cars"] .probe .b-failing`)),
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="cars"] .traffic .b-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#participants tr[data-participant="flights"] .probe .b-ok`)))
	if cell := text(t, ctx, `#participants tr[data-participant="cars"] .probe`); !strings.Contains(cell, "in a row") {
		t.Errorf("cars' probe cell reads %q", cell)
	}
	// The log tile says what its compaction count counts: passes, beside
	// the segments they deleted.
	if tiles := text(t, ctx, `#tiles`); !regexp.MustCompile(`\d+ compaction passes deleted \d+ segments`).MatchString(tiles) {
		t.Errorf("the tiles read %q, without \"N compaction passes deleted M segments\"", tiles)
	}
	shot(t, ctx, "overview")

	// hotels comes back; the operator retries trip-stuck from its page.
	step(t, ctx, "open trip-stuck", goTo("#/tx/trip-stuck"),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="delivery-failed"][data-participant="hotels"]`)),
		chromedp.WaitEnabled(chromedp.CSS(`#btn-retry`)))
	if !strings.Contains(text(t, ctx, `#btn-abort`), "Abort") {
		t.Fatal("no abort button")
	}
	shot(t, ctx, "timeline-stuck")
	hotels.SetPathMode(wire.PathCommit, testutil.Normal)
	step(t, ctx, "click retry now", chromedp.Click(chromedp.CSS(`#btn-retry`)),
		chromedp.WaitVisible(chromedp.CSS(`#confirm[open] #confirm-ok`)))
	shot(t, ctx, "confirm-retry")
	step(t, ctx, "confirm and see trip-stuck finish", chromedp.Click(chromedp.CSS(`#confirm-ok`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="operator-retry"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="acknowledged"][data-participant="hotels"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#timeline li[data-kind="end"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#action-msg.ok`)))
	shot(t, ctx, "timeline-retried")
	st, err := c.Status("trip-stuck")
	if err != nil || !st.Done || !st.Branches[1].Acknowledged {
		t.Fatalf("trip-stuck after retry: %+v %v", st, err)
	}
	if s := hotels.State("trip-stuck"); s != "committed" {
		t.Fatalf("hotels holds trip-stuck %q", s)
	}

	// The abort button is disabled for a committed transaction, and the
	// API refuses it anyway.
	step(t, ctx, "abort disabled", chromedp.WaitVisible(chromedp.CSS(`#btn-abort[disabled]`)))
	resp, err := http.Post(base+wire.AbortPath("trip-ok"), "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusConflict {
		t.Fatalf("abort of a committed transaction: %d, want 409", resp.StatusCode)
	}
	// Committed and acknowledged: the list shows no error from the earlier
	// failed delivery (the timeline keeps it).
	step(t, ctx, "list after the retry", goTo("#/transactions?state=all"),
		chromedp.WaitVisible(chromedp.CSS(`#tx-table tr[data-id="trip-stuck"]`)))
	if row := text(t, ctx, `#tx-table tr[data-id="trip-stuck"]`); strings.Contains(row, "hotels:") || strings.Contains(row, "failed") {
		t.Errorf("trip-stuck, finished, still shows an error in the list: %q", row)
	}
}
