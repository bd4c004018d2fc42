package coordinator_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

var epoch = time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)

// env is a coordinator on an in-memory file system and a fake clock, with
// participant doubles served over HTTP on 127.0.0.1.
type env struct {
	t     *testing.T
	clock *testutil.FakeClock
	fs    *memfs.FS
	parts map[string]*testutil.Participant
	opts  coordinator.Options
	c     *coordinator.Coordinator
	url   string
	// release, when set by a test's setup, is called once a transaction
	// has been submitted, to let held answers go.
	release func()
}

func newEnv(t *testing.T, names ...string) *env {
	t.Helper()
	e := &env{t: t, clock: testutil.NewFakeClock(epoch), fs: memfs.New(), parts: map[string]*testutil.Participant{}}
	urls := map[string]string{}
	for _, n := range names {
		p := testutil.NewParticipant(t, n)
		e.parts[n] = p
		urls[n] = p.URL
	}
	e.opts = coordinator.Options{
		Dir: "/data/coordinator",
		FS:  e.fs,
		// On the real file system: it outlives a crash of the memory one
		// whole, as synced data does.
		RememberPath:    filepath.Join(t.TempDir(), "remembered"),
		Participants:    urls,
		Clock:           e.clock,
		RequestTimeout:  5 * time.Second,
		ShutdownTimeout: 2 * time.Second,
		CompactInterval: time.Hour, // compaction runs when a test says
		DecisionDelay:   -1,        // decisions leave at once; TestDecisionDelay covers the wait
	}
	t.Cleanup(func() {
		if e.c != nil {
			e.c.Close()
		}
	})
	return e
}

// start opens the coordinator and serves it on a fresh loopback port.
func (e *env) start() {
	e.t.Helper()
	if err := e.tryStart(); err != nil {
		e.t.Fatalf("start coordinator: %v", err)
	}
}

func (e *env) tryStart() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	c, err := coordinator.New(e.opts)
	if err != nil {
		ln.Close()
		return err
	}
	if err := c.Start(ln); err != nil {
		c.Close()
		return err
	}
	e.c, e.url = c, c.URL()
	return nil
}

// crash stops the coordinator as a power loss would: writes not yet synced
// are lost, nothing more is sent.
func (e *env) crash() {
	e.t.Helper()
	e.fs.Crash()
	e.c.Close()
	e.c = nil
}

// restart crashes the coordinator and starts a new one on the same data.
func (e *env) restart() {
	e.t.Helper()
	e.crash()
	e.start()
}

func branches(names ...string) []wire.Branch {
	out := make([]wire.Branch, len(names))
	for i, n := range names {
		out[i] = wire.Branch{Participant: n, Payload: json.RawMessage(fmt.Sprintf(`{"sku":"%s-1","quantity":1}`, n))}
	}
	return out
}

// post sends body to path and returns the status and raw answer.
func (e *env) post(path string, body string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Post(e.url+path, "application/json", bytes.NewBufferString(body))
	if err != nil {
		e.t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// get fetches path and returns the status and raw answer.
func (e *env) get(path string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.url + path)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// submit posts req and decodes the answer, failing unless it is 200 or 202.
func (e *env) submit(req wire.SubmitRequest) wire.SubmitResponse {
	e.t.Helper()
	b, _ := json.Marshal(req)
	code, body := e.post(wire.PathTransactions, string(b))
	if code != http.StatusOK && code != http.StatusAccepted {
		e.t.Fatalf("submit %s: status %d: %s", req.ID, code, body)
	}
	var resp wire.SubmitResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		e.t.Fatalf("submit %s: decode %s: %v", req.ID, body, err)
	}
	return resp
}

// submitAsync runs submit in a goroutine; the answer (or error) arrives on
// the returned channel.
func (e *env) submitAsync(req wire.SubmitRequest) <-chan submitResult {
	ch := make(chan submitResult, 1)
	go func() {
		b, _ := json.Marshal(req)
		resp, err := http.Post(e.url+wire.PathTransactions, "application/json", bytes.NewReader(b))
		if err != nil {
			ch <- submitResult{err: err}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var r wire.SubmitResponse
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusAccepted {
			ch <- submitResult{code: resp.StatusCode, err: fmt.Errorf("status %d: %s", resp.StatusCode, body)}
			return
		}
		err = json.Unmarshal(body, &r)
		ch <- submitResult{code: resp.StatusCode, resp: r, err: err}
	}()
	return ch
}

type submitResult struct {
	code int
	resp wire.SubmitResponse
	err  error
}

// status fetches one transaction's status.
func (e *env) status(id concord.TxID) wire.TxStatus {
	e.t.Helper()
	code, body := e.get(wire.TransactionPath(id))
	if code != http.StatusOK {
		e.t.Fatalf("GET %s: status %d: %s", id, code, body)
	}
	var st wire.TxStatus
	if err := json.Unmarshal(body, &st); err != nil {
		e.t.Fatalf("decode status %s: %v", body, err)
	}
	return st
}

// outcome asks the in-doubt endpoint.
func (e *env) outcome(id concord.TxID) concord.Outcome {
	e.t.Helper()
	code, body := e.get(wire.OutcomePath(id))
	if code != http.StatusOK {
		e.t.Fatalf("GET outcome %s: status %d: %s", id, code, body)
	}
	var o wire.OutcomeResponse
	if err := json.Unmarshal(body, &o); err != nil {
		e.t.Fatalf("decode outcome %s: %v", body, err)
	}
	return o.Outcome
}

// eventually polls cond until it holds. The coordinator reacts to answers
// that travel over real sockets, so there is no event to wait on; the
// deadline is generous and only a failure waits for it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling real sockets; see the comment above
	}
}

// waitSeen receives from ch until a request on path arrives.
func waitSeen(t *testing.T, ch <-chan testutil.Seen, path string) testutil.Seen {
	t.Helper()
	timeout := time.NewTimer(10 * time.Second)
	defer timeout.Stop()
	for {
		select {
		case s := <-ch:
			if s.Path == path {
				return s
			}
		case <-timeout.C:
			t.Fatalf("no %s request arrived", path)
		}
	}
}

// drain forwards a Notify channel's later requests to nowhere, so that
// doubles never block on it.
func drain(ch chan testutil.Seen) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for {
			select {
			case <-ch:
			case <-ctx.Done():
				return
			}
		}
	}()
	return cancel
}

var errCrash = errors.New("crash here")
