package wire

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestValidTraceparent(t *testing.T) {
	good := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tp := range []string{good, "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"} {
		if !ValidTraceparent(tp) {
			t.Errorf("ValidTraceparent(%q) = false, want true", tp)
		}
	}
	for _, tp := range []string{
		"", "garbage",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",   // upper case
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",   // zero trace id
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",   // zero parent id
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",   // version ff
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", // version 00 has no more fields
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
	} {
		if ValidTraceparent(tp) {
			t.Errorf("ValidTraceparent(%q) = true, want false", tp)
		}
	}
}

// TestDoSendsTraceparent: a traceparent in the context goes out as the
// header; an invalid one is never attached.
func TestDoSendsTraceparent(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get(HeaderTraceparent)
		WriteJSON(w, http.StatusOK, map[string]string{})
	}))
	defer srv.Close()
	tp := "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	if err := Do(WithTraceparent(context.Background(), tp), srv.Client(), http.MethodGet, srv.URL, nil, nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != tp {
		t.Errorf("header %q, want %q", h, tp)
	}
	if err := Do(WithTraceparent(context.Background(), "bad"), srv.Client(), http.MethodGet, srv.URL, nil, nil); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != "" {
		t.Errorf("invalid traceparent sent as %q", h)
	}
}
