// Package apicheck validates HTTP requests and answers against Concord's
// OpenAPI documents (package openapi) with kin-openapi, for tests: wrap the
// transport a test's client uses, and every request it sends and every
// answer it gets is checked, so that the documents cannot drift from the
// handlers.
//
// A request the document refuses must be refused by the server (a 4xx);
// one it accepts is sent as is. An answer must match the document: its
// status code listed for the operation, its body of the schema given for
// that code. A path no document describes must be refused (400, 401, 403,
// 404 or 405).
package apicheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/concordtx/concord/openapi"
)

// Checker validates traffic against one or more documents, tried in order
// for a route. It is safe for concurrent use.
type Checker struct {
	routers []routers.Router

	mu       sync.Mutex
	failures []string
	checked  int
}

// New loads and validates the documents (openapi.Coordinator() and
// openapi.Participant() if none are given).
func New(docs ...[]byte) (*Checker, error) {
	if len(docs) == 0 {
		docs = [][]byte{openapi.Coordinator(), openapi.Participant()}
	}
	for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(ct, openapi3filter.PlainBodyDecoder) // the console's static files
	}
	c := &Checker{}
	for i, raw := range docs {
		doc, err := Load(raw)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		// The documents name an example server; tests listen on any
		// loopback port, so routes match on the path alone.
		doc.Servers = nil
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		c.routers = append(c.routers, r)
	}
	return c, nil
}

// Load parses raw as an OpenAPI document and validates it.
func Load(raw []byte) (*openapi3.T, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, err
	}
	if err := doc.Validate(loader.Context); err != nil {
		return nil, fmt.Errorf("invalid document: %w", err)
	}
	return doc, nil
}

// Failures returns every mismatch seen so far.
func (c *Checker) Failures() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.failures...)
}

// Checked counts the exchanges validated so far.
func (c *Checker) Checked() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

// Client returns a copy of base (nil: a new client) whose transport is
// checked.
func (c *Checker) Client(base *http.Client) *http.Client {
	var hc http.Client
	if base != nil {
		hc = *base
	}
	hc.Transport = c.Transport(hc.Transport)
	return &hc
}

// Transport wraps base (nil: http.DefaultTransport). A mismatch is recorded
// (Failures) and returned as the round trip's error.
func (c *Checker) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport{c: c, base: base}
}

type transport struct {
	c            *Checker
	base         http.RoundTripper
	requestsOnly bool // a fake's answers: not checked
}

// ErrMismatch is wrapped by the error of a round trip whose request or
// answer does not match the document.
var ErrMismatch = errors.New("openapi mismatch")

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	var route *routers.Route
	var params map[string]string
	for _, r := range t.c.routers {
		rt, p, err := r.FindRoute(req)
		if err == nil {
			route, params = rt, p
			break
		}
	}
	var reqErr error
	var input *openapi3filter.RequestValidationInput
	opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, MultiError: true}
	opts.WithCustomSchemaErrorFunc(shortSchemaError)
	if route != nil {
		check := req.Clone(context.Background())
		check.Body = io.NopCloser(bytes.NewReader(reqBody))
		input = &openapi3filter.RequestValidationInput{Request: check, PathParams: params, Route: route, Options: opts}
		reqErr = openapi3filter.ValidateRequest(context.Background(), input)
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		return resp, nil // the caller sees the short body; nothing to check
	}
	where := req.Method + " " + req.URL.Path
	if t.requestsOnly {
		if reqErr != nil && resp.StatusCode < 400 {
			return t.fail(resp, "%s: the document refuses the request (%v), yet it was answered %d", where, reqErr, resp.StatusCode)
		}
		if route == nil && resp.StatusCode < 400 {
			return t.fail(resp, "%s: no document describes it, yet it was answered %d", where, resp.StatusCode)
		}
		t.c.mu.Lock()
		t.c.checked++
		t.c.mu.Unlock()
		return resp, nil
	}
	if serverRefusal(resp, body) {
		return resp, nil // net/http's own answer, before any handler: not the API's
	}
	switch {
	case route == nil:
		// Refused before any route: unknown (404), another method (405), a
		// malformed path (400), or an authentication layer's refusal of a
		// path not granted to the caller (401, 403).
		switch resp.StatusCode {
		case http.StatusNotFound, http.StatusMethodNotAllowed, http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden:
		default:
			return t.fail(resp, "%s: no document describes it, yet it was answered %d", where, resp.StatusCode)
		}
	case reqErr != nil && resp.StatusCode < 400:
		return t.fail(resp, "%s: the document refuses the request (%v), yet it was answered %d", where, reqErr, resp.StatusCode)
	}
	if route != nil {
		rin := &openapi3filter.ResponseValidationInput{
			RequestValidationInput: input,
			Status:                 resp.StatusCode,
			Header:                 resp.Header,
			Body:                   io.NopCloser(bytes.NewReader(body)),
			Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true, ExcludeResponseBody: req.Method == http.MethodHead},
		}
		rin.Options.WithCustomSchemaErrorFunc(shortSchemaError)
		if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
			return t.fail(resp, "%s: answer %d does not match the document: %v\nbody: %.500s", where, resp.StatusCode, err, body)
		}
	}
	t.c.mu.Lock()
	t.c.checked++
	t.c.mu.Unlock()
	return resp, nil
}

func (t *transport) fail(resp *http.Response, format string, args ...any) (*http.Response, error) {
	msg := fmt.Sprintf(format, args...)
	t.c.mu.Lock()
	t.c.failures = append(t.c.failures, msg)
	t.c.mu.Unlock()
	resp.Body.Close()
	return nil, fmt.Errorf("%w: %s", ErrMismatch, msg)
}

// shortSchemaError names the field and the reason, not the whole schema.
func shortSchemaError(err *openapi3.SchemaError) string {
	return "/" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

// serverRefusal reports an answer net/http's server writes itself before
// any handler runs (plain HTTP to a TLS port, a malformed request, headers
// too large), which no API document describes.
func serverRefusal(resp *http.Response, body []byte) bool {
	if resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		return false
	}
	if ct := resp.Header.Get("Content-Type"); ct != "" && ct != "text/plain; charset=utf-8" {
		return false
	}
	for _, p := range []string{"Client sent an HTTP request to an HTTPS server", "400 Bad Request", "431 Request Header Fields Too Large"} {
		if bytes.HasPrefix(body, []byte(p)) {
			return true
		}
	}
	return false
}
