package wire_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/apicheck"
	"github.com/concordtx/concord/internal/testutil/race"
	"github.com/concordtx/concord/wire"
)

// directServer answers PREPAREs with a yes for every transaction, counting
// the connections it accepted.
func directServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(apicheck.Default.Requests(h)) // the direct client's requests validated; the answers are the tests'
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func voteYes(w http.ResponseWriter, r *http.Request) {
	var req wire.PrepareRequest
	if err := wire.DecodeRequest(w, r, 0, &req); err != nil {
		wire.WriteError(w, http.StatusBadRequest, err.Error())
		return
	}
	resp := wire.PrepareResponse{Votes: []wire.VoteReply{}}
	for _, tx := range req.Transactions {
		resp.Votes = append(resp.Votes, wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes, Reason: r.Header.Get(wire.HeaderTraceparent)})
	}
	wire.WriteJSON(w, http.StatusOK, resp)
}

func TestDirectClientReusesItsConnection(t *testing.T) {
	srv, conns := directServer(t, voteYes)
	dc, err := wire.NewDirectClient(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	const tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	ctx := wire.WithTraceparent(context.Background(), tp)
	for i := 0; i < 5; i++ {
		resp, err := dc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a"}, {ID: "b"}}})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Votes) != 2 || resp.Votes[1].ID != "b" || resp.Votes[0].Vote != concord.VoteYes || resp.Votes[0].Reason != tp {
			t.Fatalf("answer %+v", resp)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("%d connections for 5 requests one after the other, want 1", n)
	}
	dc.CloseIdleConnections()
}

// A connection whose last request's deadline passed while it was idle is
// reused all the same.
func TestDirectClientReusesAConnectionPastItsLastDeadline(t *testing.T) {
	srv, conns := directServer(t, voteYes)
	dc, err := wire.NewDirectClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// A short deadline, so that it soon passes; on a machine too slow to
	// answer within it, a longer one (a request cut short closes its
	// connection, so the count starts after the request that succeeds).
	var ctx context.Context
	for d := 20 * time.Millisecond; ; d *= 2 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), d)
		defer cancel()
		_, err := dc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a"}}})
		if err == nil {
			break
		}
		// The context's deadline ends the call as DeadlineExceeded, or as the
		// connection's read deadline (set from it) if that fires first.
		if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, os.ErrDeadlineExceeded) || d > 10*time.Second {
			t.Fatal(err)
		}
	}
	before := conns.Load()
	<-ctx.Done()
	if _, err := dc.Prepare(context.Background(), wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a"}}}); err != nil {
		t.Fatal(err)
	}
	if n := conns.Load() - before; n != 0 {
		t.Errorf("%d new connections, want 0", n)
	}
}

// A connection the participant closed while it was idle is not used: the
// next request goes out on a new one and succeeds.
func TestDirectClientSkipsAConnectionClosedWhileIdle(t *testing.T) {
	srv, conns := directServer(t, voteYes)
	dc, err := wire.NewDirectClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := dc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a"}}}); err != nil {
		t.Fatal(err)
	}
	srv.CloseClientConnections() // as an idle timeout or a restart would
	for i := 0; i < 3; i++ {
		if _, err := dc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a"}}}); err != nil {
			t.Fatalf("request %d after the participant closed the idle connection: %v", i, err)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}
}

func TestDirectClientErrors(t *testing.T) {
	srv, _ := directServer(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case wire.PathCommit:
			wire.WriteError(w, http.StatusConflict, "no such thing")
		case wire.PathAbort:
			w.Write([]byte(`{"acknowledged":`))
		default:
			panic(http.ErrAbortHandler) // the connection drops without an answer
		}
	})
	dc, err := wire.NewDirectClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = dc.Commit(ctx, []concord.TxID{"a"})
	var se *wire.StatusError
	if !errors.As(err, &se) || se.Code != http.StatusConflict || se.Message != "no such thing" {
		t.Errorf("commit: %v, want a 409 StatusError", err)
	}
	if _, err = dc.Abort(ctx, []concord.TxID{"a"}); !errors.Is(err, wire.ErrBadJSON) {
		t.Errorf("abort: %v, want ErrBadJSON", err)
	}
	_, err = dc.Prepare(ctx, wire.PrepareRequest{})
	var ue *url.Error
	if !errors.As(err, &ue) {
		t.Errorf("prepare on a dropped connection: %v, want a *url.Error", err)
	}
	// A request that cannot be encoded is not sent, and its error is not
	// the answer's (ErrBadJSON) nor the connection's (*url.Error).
	_, err = dc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "a", Payload: []byte("{")}}})
	if err == nil || errors.Is(err, wire.ErrBadJSON) || errors.As(err, &ue) {
		t.Errorf("prepare of a payload that is not JSON: %v, want an encoding error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err = dc.Commit(cctx, []concord.TxID{"a"}); !errors.Is(err, context.Canceled) {
		t.Errorf("commit with a cancelled context: %v", err)
	}
	if _, err := wire.NewDirectClient("https://127.0.0.1:1"); err == nil {
		t.Error("an https URL is accepted")
	}
}

// A request waiting for an answer ends when its context does.
func TestDirectClientStopsWithItsContext(t *testing.T) {
	release, arrived := make(chan struct{}), make(chan struct{}, 1)
	srv, _ := directServer(t, func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	defer close(release)
	dc, err := wire.NewDirectClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		_, err := dc.Commit(ctx, []concord.TxID{"a"})
		done <- err
	}()
	<-arrived
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("%v, want context.Canceled", err)
	}
}

// cannedServer answers every request on its connections with answer,
// allocating nothing per request, so that what a test or benchmark counts
// is the client's. It returns the server's URL.
func cannedServer(tb testing.TB, answer string) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(answer)) + "\r\n\r\n" + answer)
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCanned(nc, resp)
		}
	}()
	return "http://" + ln.Addr().String()
}

// serveCanned reads requests from nc (headers, then Content-Length bytes
// of body) and writes resp after each.
func serveCanned(nc net.Conn, resp []byte) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	for {
		n := 0
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 {
				break // the blank line after the headers
			}
			const cl = "content-length:"
			if len(line) > len(cl) && strings.EqualFold(string(line[:len(cl)]), cl) {
				for _, c := range bytes.TrimSpace(line[len(cl):]) {
					n = 10*n + int(c-'0')
				}
			}
		}
		if _, err := br.Discard(n); err != nil {
			return
		}
		if _, err := nc.Write(resp); err != nil {
			return
		}
	}
}

var (
	cannedTxs   = []wire.PrepareTx{{ID: "b-1", Payload: []byte(`{"sku":"F-1","quantity":1}`)}, {ID: "b-2", Payload: []byte(`{"sku":"F-2","quantity":1}`)}, {ID: "b-3", Payload: []byte(`{"sku":"F-3","quantity":1}`)}}
	cannedIDs   = []concord.TxID{"b-1", "b-2", "b-3"}
	cannedVotes = `{"votes":[{"id":"b-1","vote":"yes"},{"id":"b-2","vote":"yes"},{"id":"b-3","vote":"yes"}]}` + "\n"
	cannedAcks  = `{"acknowledged":["b-1","b-2","b-3"]}` + "\n"
)

// BenchmarkDirectClient sends a batch of three PREPAREs, and of three
// COMMITs, to a participant that answers at once: the coordinator's cost
// of one request.
func BenchmarkDirectClient(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // as the coordinator's requests have
	defer cancel()
	b.Run("prepare", func(b *testing.B) {
		dc, err := wire.NewDirectClient(cannedServer(b, cannedVotes))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := dc.Prepare(ctx, wire.PrepareRequest{Coordinator: "http://127.0.0.1:7070", Transactions: cannedTxs})
			if err != nil || len(resp.Votes) != 3 {
				b.Fatal(resp, err)
			}
		}
	})
	b.Run("commit", func(b *testing.B) {
		dc, err := wire.NewDirectClient(cannedServer(b, cannedAcks))
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			resp, err := dc.Commit(ctx, cannedIDs)
			if err != nil || len(resp.Acknowledged) != 3 {
				b.Fatal(resp, err)
			}
		}
	})
}

// What a request allocates does not grow with its batch: the body is
// encoded into a reused buffer, the answer's list is made once for the
// transactions asked, and its ids are the request's strings.
func TestDirectClientAllocationsDoNotGrowWithTheBatch(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	allocs := func(n int) (prepare, commit float64) {
		txs := make([]wire.PrepareTx, n)
		ids := make([]concord.TxID, n)
		var votes, acks strings.Builder
		for i := range txs {
			ids[i] = concord.TxID("tx-" + strconv.Itoa(i))
			txs[i] = wire.PrepareTx{ID: ids[i], Payload: []byte(`{"sku":"F-1","quantity":1}`)}
			if i > 0 {
				votes.WriteString(",")
				acks.WriteString(",")
			}
			votes.WriteString(`{"id":"` + string(ids[i]) + `","vote":"yes"}`)
			acks.WriteString(`"` + string(ids[i]) + `"`)
		}
		pc, err := wire.NewDirectClient(cannedServer(t, `{"votes":[`+votes.String()+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		cc, err := wire.NewDirectClient(cannedServer(t, `{"acknowledged":[`+acks.String()+`]}`))
		if err != nil {
			t.Fatal(err)
		}
		prepare = testing.AllocsPerRun(50, func() {
			if resp, err := pc.Prepare(ctx, wire.PrepareRequest{Coordinator: "http://c", Transactions: txs}); err != nil || len(resp.Votes) != n {
				t.Fatal(resp, err)
			}
		})
		commit = testing.AllocsPerRun(50, func() {
			if resp, err := cc.Commit(ctx, ids); err != nil || len(resp.Acknowledged) != n {
				t.Fatal(resp, err)
			}
		})
		return prepare, commit
	}
	p1, c1 := allocs(1)
	p64, c64 := allocs(64)
	if p64 != p1 || c64 != c1 {
		t.Errorf("allocations per request: prepare %v for one transaction, %v for 64; commit %v and %v", p1, p64, c1, c64)
	}
}
