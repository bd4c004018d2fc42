package wire_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// directServer answers PREPAREs with a yes for every transaction, counting
// the connections it accepted.
func directServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
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
		if !errors.Is(err, context.DeadlineExceeded) || d > 10*time.Second {
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
