package bench

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
)

// A bench connection posts whole requests, reads answers of any status,
// reuses its connection, and dials again after the server closes it.
func TestConnPostsAndRedials(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || r.URL.Path != "/v1/transactions" || r.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request line or headers", http.StatusBadRequest)
			return
		}
		if string(body) == `{"close":true}` {
			w.Header().Set("Connection", "close")
		}
		w.WriteHeader(http.StatusAccepted)
		w.Write(append([]byte("echo "), body...))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	c, err := newConn(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	var buf bytes.Buffer
	for i, body := range []string{`{"a":1}`, `{"close":true}`, `{"b":2}`, `{"c":3}`} {
		status, err := c.post(context.Background(), "/v1/transactions", []byte(body), &buf)
		if err != nil {
			t.Fatalf("post %d: %v", i, err)
		}
		if status != http.StatusAccepted || buf.String() != "echo "+body {
			t.Fatalf("post %d: %d %q", i, status, buf.String())
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections for 4 requests with one close, want 2", n)
	}
	if _, err := newConn("ftp://x"); err == nil {
		t.Fatal("ftp URL accepted")
	}
}
