package wire

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// MaxBodyBytes is the default bound on a request or response body read by
// the helpers in this file.
const MaxBodyBytes = 1 << 20

// ErrBodyTooLarge is returned by DecodeRequest for a body past its limit; the
// handler answers 413.
var ErrBodyTooLarge = errors.New("request body too large")

// ErrBadJSON is returned by DecodeRequest and the clients for a body that is
// not exactly one JSON value of the expected shape (unknown fields included).
var ErrBadJSON = errors.New("malformed JSON")

// StatusError is a non-2xx answer from a Concord HTTP endpoint.
type StatusError struct {
	Code    int    // HTTP status code
	Message string // the ErrorResponse's text, or the start of the body
	State   string // the ErrorResponse's state, if any (StateForgotten)
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("http %d: %s", e.Code, e.Message)
}

// DecodeRequest reads r's body as exactly one JSON value into v, refusing
// unknown fields, trailing data and bodies past maxBytes (0 means
// MaxBodyBytes). Its error wraps ErrBodyTooLarge or ErrBadJSON.
func DecodeRequest(w http.ResponseWriter, r *http.Request, maxBytes int64, v any) error {
	if maxBytes <= 0 {
		maxBytes = MaxBodyBytes
	}
	body := http.MaxBytesReader(w, r.Body, maxBytes)
	// The body is read whole into a buffer sized by Content-Length, unless
	// that claims more than may be read.
	sizeHint := r.ContentLength
	if sizeHint > maxBytes {
		sizeHint = 0
	}
	var err error
	switch v := v.(type) {
	case *SubmitRequest:
		err = decodeRead(body, sizeHint, v, decodeSubmitFast)
	case *PrepareRequest:
		err = decodeRead(body, sizeHint, v, decodePrepareFast)
	case *DecisionRequest:
		err = decodeRead(body, sizeHint, v, decodeDecisionFast)
	default:
		err = decodeStrict(body, v)
	}
	if err != nil {
		var tooLarge *http.MaxBytesError // here, not above: it goes to the heap
		if errors.As(err, &tooLarge) {
			return fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, tooLarge.Limit)
		}
	}
	return err
}

func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("%w: empty body", ErrBadJSON)
		}
		return fmt.Errorf("%w: %v", ErrBadJSON, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return err
		}
		return fmt.Errorf("%w: data after the JSON value", ErrBadJSON)
	}
	return nil
}

// jsonContentType is the Content-Type of every JSON answer, shared: a
// header value set whole is never modified in place.
var jsonContentType = []string{"application/json"}

// WriteJSON answers with status and v encoded as JSON. A *SubmitResponse
// is written as the SubmitResponse it points to; passing the pointer spares
// the copy an interface holding the value needs.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	bp := outPool.Get().(*[]byte)
	defer outPool.Put(bp)
	b := (*bp)[:0]
	ok := false
	switch r := v.(type) {
	case SubmitResponse:
		b, ok = appendSubmitResponse(b, &r)
	case *SubmitResponse:
		if r != nil {
			b, ok = appendSubmitResponse(b, r)
		}
	case PrepareResponse, DecisionResponse:
		b, ok = appendAnswer(b, r)
	}
	if ok {
		b = append(b, '\n')
		if cap(b) <= maxPooledBody {
			*bp = b[:0]
		}
	} else {
		var err error
		if b, err = json.Marshal(v); err != nil {
			status = http.StatusInternalServerError
			b, _ = json.Marshal(ErrorResponse{Error: "encode response: " + err.Error()})
		}
		b = append(b, '\n')
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(status)
	w.Write(b)
}

// outPool holds the buffers WriteJSON encodes into. It takes one and puts
// it back once the answer is written: the ResponseWriter, an io.Writer,
// keeps nothing of what it is given.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// WriteError answers with status and an ErrorResponse holding msg.
func WriteError(w http.ResponseWriter, status int, msg string) {
	WriteJSON(w, status, ErrorResponse{Error: msg})
}

// MethodNotAllowed answers 405 naming the allowed methods.
func MethodNotAllowed(w http.ResponseWriter, r *http.Request, allowed ...string) {
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	WriteError(w, http.StatusMethodNotAllowed,
		fmt.Sprintf("method %s not allowed on %s; use %s", r.Method, r.URL.Path, strings.Join(allowed, " or ")))
}

// NewHTTPClient returns an HTTP client for talking to Concord peers: keep-alive
// connections (many idle ones per host, since requests to one participant are
// frequent), bounded dial and header waits, and timeout as the bound on a whole
// request (0 means none: use a context deadline instead).
func NewHTTPClient(timeout time.Duration) *http.Client {
	tr := &http.Transport{
		Proxy:                 nil, // peers are addressed directly, never through a proxy
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // bounded by the request's context
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{Transport: tr, Timeout: timeout}
}

// Do sends in (nil for none) as JSON with method to url and decodes a 2xx
// answer into out (nil to discard). A non-2xx answer is a *StatusError; a body
// that does not decode wraps ErrBadJSON.
func Do(ctx context.Context, hc *http.Client, method, url string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	if in != nil || method == http.MethodPost {
		req.Header.Set("Content-Type", "application/json") // servers refuse a POST of any other type (CSRF)
	}
	req.Header.Set("Accept", "application/json")
	if tp := TraceparentFrom(ctx); tp != "" {
		req.Header.Set(HeaderTraceparent, tp)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	limited := io.LimitReader(resp.Body, 64<<20)
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(limited, 4096))
		var er ErrorResponse
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &er) == nil && er.Error != "" {
			msg = er.Error
		}
		return &StatusError{Code: resp.StatusCode, Message: msg, State: er.State}
	}
	if out == nil {
		io.Copy(io.Discard, limited)
		return nil
	}
	dec := json.NewDecoder(limited)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("%w: decode %s %s answer: %v", ErrBadJSON, method, url, err)
	}
	io.Copy(io.Discard, limited) // let the connection be reused
	return nil
}
