package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// Errors an API call may wrap, compared with errors.Is. Every answer other
// than success is an *APIError, which matches the one for its status.
var (
	ErrBadRequest   = errors.New("bad request")                 // 400, 405, 413: the message says what
	ErrNotFound     = errors.New("transaction not found")       // 404
	ErrConflict     = errors.New("id used for another request") // 409
	ErrUnavailable  = errors.New("coordinator unavailable")     // 503 (closing, or overloaded: retry later)
	ErrUnauthorized = errors.New("not authenticated")           // 401: no or unknown certificate or token
	ErrForbidden    = errors.New("forbidden")                   // 403: another client's transaction, or operators only
	ErrInvalidInput = errors.New("client: invalid input")       // refused before sending
	// ErrForgotten: the coordinator holds no record of the id (404 with
	// state "forgotten", or an outcome answer marked forgotten): it was
	// never submitted, or finished longer ago than the coordinator's
	// idempotency window. Its outcome is unknown, not aborted. An error
	// matching it matches ErrNotFound too.
	ErrForgotten = errors.New("transaction forgotten: never submitted, or finished longer ago than the idempotency window")
)

// APIError is an error answer from the coordinator.
type APIError struct {
	StatusCode int
	Message    string
	// State qualifies the error when the coordinator says: "forgotten".
	State string
}

func (e *APIError) Error() string { return fmt.Sprintf("coordinator: %d: %s", e.StatusCode, e.Message) }

// Is matches the sentinel for the status code.
func (e *APIError) Is(target error) bool {
	switch e.StatusCode {
	case http.StatusBadRequest, http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge:
		return target == ErrBadRequest
	case http.StatusNotFound:
		return target == ErrNotFound || target == ErrForgotten && e.State == wire.StateForgotten
	case http.StatusConflict:
		return target == ErrConflict
	case http.StatusServiceUnavailable:
		return target == ErrUnavailable
	case http.StatusUnauthorized:
		return target == ErrUnauthorized
	case http.StatusForbidden:
		return target == ErrForbidden
	}
	return false
}

// DefaultURL is the coordinator address used when Options.URL is empty.
const DefaultURL = "http://127.0.0.1:7070"

// Options configures a Client.
type Options struct {
	// URL is the coordinator's base URL. Default DefaultURL.
	URL string
	// HTTPClient is used for every call; nil means a keep-alive client.
	HTTPClient *http.Client
	// Timeout bounds each call that has no deadline of its own; 0 means
	// 65 s (the longest transaction timeout the coordinator accepts by
	// default, plus its grace).
	Timeout time.Duration
	// TLS, when set, is used for an https:// coordinator: the client's
	// certificate (if it authenticates with one) and the CA the
	// coordinator's certificate must be signed by. Ignored when HTTPClient
	// is set.
	TLS *tls.Config
	// Token, when set, is sent as "Authorization: Bearer Token" with every
	// call to URL's host (on top of HTTPClient's transport); it needs an
	// https URL. The client never follows redirects.
	Token string
}

func (o Options) withDefaults() (Options, error) {
	if o.URL == "" {
		o.URL = DefaultURL
	}
	if o.Timeout == 0 {
		o.Timeout = 65 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = wire.NewHTTPClient(0)
		if o.TLS != nil {
			hc, err := security.WithClientTLS(o.HTTPClient, o.TLS)
			if err != nil {
				return o, err
			}
			o.HTTPClient = hc
		}
	}
	if err := o.validate(); err != nil {
		return o, err
	}
	hc := *o.HTTPClient
	hc.CheckRedirect = security.NoRedirects // a redirect could carry the request and its credentials anywhere
	if o.Token != "" {
		u, _ := url.Parse(o.URL)
		hc.Transport = &security.BearerTransport{Token: o.Token, Host: u.Host, Base: hc.Transport}
	}
	o.HTTPClient = &hc
	return o, nil
}

func (o Options) validate() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: coordinator URL %q: want http://host:port", ErrInvalidInput, o.URL)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %v is negative", ErrInvalidInput, o.Timeout)
	}
	if u.Scheme != "https" && o.Token != "" {
		return fmt.Errorf("%w: coordinator URL %q: a bearer token is sent over https only", ErrInvalidInput, o.URL)
	}
	if u.Scheme != "https" && o.TLS != nil {
		return fmt.Errorf("%w: coordinator URL %q: TLS is given, so the coordinator is called over https only", ErrInvalidInput, o.URL)
	}
	return nil
}

// Client talks to one coordinator. It is safe for concurrent use.
type Client struct {
	opts Options
	base string
}

// New returns a client for the coordinator at opts.URL.
func New(opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Client{opts: opts, base: strings.TrimRight(opts.URL, "/")}, nil
}

// URL returns the coordinator's base URL.
func (c *Client) URL() string { return c.base }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	err := wire.Do(ctx, c.opts.HTTPClient, method, c.base+path, in, out)
	var se *wire.StatusError
	if errors.As(err, &se) {
		return &APIError{StatusCode: se.Code, Message: se.Message, State: se.State}
	}
	if err != nil {
		return fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
	}
	return nil
}

// NewID returns a fresh random transaction id.
func NewID() concord.TxID {
	var b [12]byte
	rand.Read(b[:])
	return concord.TxID("tx-" + hex.EncodeToString(b[:]))
}

// Submit runs a transaction and returns its outcome once the decision is
// durable. A request without an id gets one here (NewID), and the answer
// carries it even with an error, so that submitting again with that id
// after a network error is safe: the coordinator runs one id once, and
// answers a resubmission of the same request (docs/protocol.md says what
// is the same) with the first answer for its idempotency window (24 hours
// by default) after the transaction finished, across its restarts.
func (c *Client) Submit(ctx context.Context, req wire.SubmitRequest) (wire.SubmitResponse, error) {
	if req.ID == "" {
		req.ID = NewID()
	}
	if err := concord.ValidateTxID(req.ID); err != nil {
		return wire.SubmitResponse{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	if len(req.Branches) == 0 {
		return wire.SubmitResponse{}, fmt.Errorf("%w: no branches", ErrInvalidInput)
	}
	var resp wire.SubmitResponse
	if err := c.do(ctx, http.MethodPost, wire.PathTransactions, req, &resp); err != nil {
		return wire.SubmitResponse{ID: req.ID}, err
	}
	return resp, nil
}

// Get returns a transaction's state, votes and acknowledgements.
func (c *Client) Get(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return wire.TxStatus{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var st wire.TxStatus
	err := c.do(ctx, http.MethodGet, wire.TransactionPath(id), nil, &st)
	return st, err
}

// List returns up to limit transactions in state: "pending" (preparing or
// waiting for acknowledgements), "committed", "aborted" or "all". Zero
// limit means the coordinator's default.
func (c *Client) List(ctx context.Context, state string, limit int) (wire.TxList, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	path := wire.PathTransactions
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var l wire.TxList
	err := c.do(ctx, http.MethodGet, path, nil, &l)
	return l, err
}

// Outcome asks what a participant in doubt asks: committed, aborted, or
// pending. For an id the coordinator has no record of it returns
// OutcomePending and an error matching ErrForgotten (and ErrNotFound): the
// outcome is unknown. (A participant in doubt may take that as aborted:
// the coordinator forgets a commit only once every participant that
// voted yes acknowledged it.)
func (c *Client) Outcome(ctx context.Context, id concord.TxID) (concord.Outcome, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return concord.OutcomePending, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var o wire.OutcomeResponse
	if err := c.do(ctx, http.MethodGet, wire.OutcomePath(id), nil, &o); err != nil {
		return concord.OutcomePending, err
	}
	if o.Forgotten {
		return concord.OutcomePending, &APIError{StatusCode: http.StatusNotFound, State: wire.StateForgotten,
			Message: fmt.Sprintf("%s: the coordinator holds no record of it (never submitted, or finished longer ago than its idempotency window)", id)}
	}
	return o.Outcome, nil
}

// Health returns nil while the coordinator is up and working.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, wire.PathHealth, nil, nil)
}

// RetryNow asks the coordinator to resend a transaction's decision at once
// to every participant that has not acknowledged it. It returns the
// transaction's status; ErrNotFound when it is unknown or already finished.
func (c *Client) RetryNow(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	return c.operate(ctx, id, "retry")
}

// Abort asks the coordinator to abort a transaction that has no decision
// yet. A decided one is refused with ErrConflict: a commit is never
// aborted.
func (c *Client) Abort(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	return c.operate(ctx, id, "abort")
}

func (c *Client) operate(ctx context.Context, id concord.TxID, op string) (wire.TxStatus, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return wire.TxStatus{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var st wire.TxStatus
	err := c.do(ctx, http.MethodPost, wire.TransactionPath(id)+"/"+op, nil, &st)
	return st, err
}
