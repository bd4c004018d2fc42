package apicheck

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
)

// Handler wraps h, a server's handler, so that each request it is given and
// each answer it writes are validated as Transport validates them, for
// traffic no test client carries (a coordinator's requests to a fake
// participant). The answer is buffered and written once checked; a
// mismatch is recorded (Failures) and the answer still goes out. A
// handler that aborts (panics with http.ErrAbortHandler, dropping the
// connection) is let through unchecked: there is no answer.
func (c *Checker) Handler(h http.Handler) http.Handler { return c.handler(h, false) }

// Requests is Handler checking the requests only, for a test's fake server
// whose answers are the test's (some deliberately wrong).
func (c *Checker) Requests(h http.Handler) http.Handler { return c.handler(h, true) }

func (c *Checker) handler(h http.Handler, requestsOnly bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		resp := rec.Result()
		check := r.Clone(r.Context())
		check.Body = io.NopCloser(bytes.NewReader(body))
		check.URL.Scheme, check.URL.Host = "http", r.Host
		rt := &transport{c: c, requestsOnly: requestsOnly, base: roundTripperFunc(func(*http.Request) (*http.Response, error) { return resp, nil })}
		rt.RoundTrip(check) // records any mismatch
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	})
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
