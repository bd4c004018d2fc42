package client

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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
	// URLs are more coordinators of the same deployment (the same data or
	// the same cluster), tried in order after URL when a connection to
	// one cannot be made. Only a failure to connect moves on (the request
	// never left), so no request is sent to two coordinators; a call that
	// reached one and failed is that call's error. The client keeps using
	// the last one that answered.
	URLs []string
	// WrapTransport, when set, wraps the HTTP transport every call goes
	// through, last (after TLS and the token), for instrumentation.
	WrapTransport func(http.RoundTripper) http.RoundTripper
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
		var hosts []string
		for _, s := range o.all() {
			u, _ := url.Parse(s)
			hosts = append(hosts, u.Host)
		}
		hc.Transport = &bearerHosts{token: o.Token, hosts: hosts, base: hc.Transport}
	}
	if o.WrapTransport != nil {
		base := hc.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		hc.Transport = o.WrapTransport(base)
	}
	o.HTTPClient = &hc
	return o, nil
}

// all returns URL and URLs.
func (o Options) all() []string { return append([]string{o.URL}, o.URLs...) }

func (o Options) validate() error {
	for _, u := range o.all() {
		if err := o.validateURL(u); err != nil {
			return err
		}
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: Timeout %v is negative", ErrInvalidInput, o.Timeout)
	}
	return nil
}

func (o Options) validateURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%w: coordinator URL %q: want http://host:port", ErrInvalidInput, s)
	}
	if u.Scheme != "https" && o.Token != "" {
		return fmt.Errorf("%w: coordinator URL %q: a bearer token is sent over https only", ErrInvalidInput, s)
	}
	if u.Scheme != "https" && o.TLS != nil {
		return fmt.Errorf("%w: coordinator URL %q: TLS is given, so the coordinator is called over https only", ErrInvalidInput, s)
	}
	return nil
}

// Client talks to a coordinator (one of Options.URL and Options.URLs). It
// is safe for concurrent use.
type Client struct {
	opts  Options
	bases []string
	cur   atomic.Int32 // index in bases of the coordinator last reached
}

// New returns a client for the coordinator at opts.URL (and opts.URLs).
func New(opts Options) (*Client, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{opts: opts}
	for _, u := range opts.all() {
		c.bases = append(c.bases, strings.TrimRight(u, "/"))
	}
	return c, nil
}

// URL returns the base URL of the coordinator the client calls first now:
// Options.URL, or the one of Options.URLs it last reached.
func (c *Client) URL() string { return c.bases[c.cur.Load()] }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	first := int(c.cur.Load())
	var err error
	for i := range c.bases {
		k := (first + i) % len(c.bases)
		base := c.bases[k]
		err = wire.Do(ctx, c.opts.HTTPClient, method, base+path, in, out)
		if notConnected(err) && i+1 < len(c.bases) && ctx.Err() == nil {
			continue // the request never left: the next coordinator may take it
		}
		if !notConnected(err) {
			c.cur.Store(int32(k))
		}
		var se *wire.StatusError
		if errors.As(err, &se) {
			return &APIError{StatusCode: se.Code, Message: se.Message, State: se.State}
		}
		if err != nil {
			return fmt.Errorf("%s %s%s: %w", method, base, path, err)
		}
		return nil
	}
	return err
}

// notConnected reports an error of a call that could not connect (so sent
// nothing): a refused or unreachable dial.
func notConnected(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// bearerHosts sends the token to the coordinators' hosts only, over https.
type bearerHosts struct {
	token string
	hosts []string
	base  http.RoundTripper
}

func (b *bearerHosts) RoundTrip(r *http.Request) (*http.Response, error) {
	for _, h := range b.hosts {
		if r.URL.Host == h {
			return (&security.BearerTransport{Token: b.token, Host: h, Base: b.base}).RoundTrip(r)
		}
	}
	base := b.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(r)
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

// List returns up to limit transactions in state (StatePending when
// empty; another than the State constants is ErrBadRequest from the
// coordinator). Zero limit means the coordinator's default (100).
func (c *Client) List(ctx context.Context, state State, limit int) (wire.TxList, error) {
	return c.ListParticipant(ctx, state, "", limit)
}

// ListParticipant is List restricted to the transactions with a branch at
// participant (every transaction when it is empty).
func (c *Client) ListParticipant(ctx context.Context, state State, participant string, limit int) (wire.TxList, error) {
	q := url.Values{}
	if participant != "" {
		q.Set("participant", participant)
	}
	if state != "" {
		q.Set("state", string(state))
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
	return c.operate(ctx, id, "retry", nil)
}

// Abort asks the coordinator to abort a transaction that has no decision
// yet. A decided one is refused with ErrConflict: a commit is never
// aborted.
func (c *Client) Abort(ctx context.Context, id concord.TxID) (wire.TxStatus, error) {
	return c.operate(ctx, id, "abort", nil)
}

// AbortBecause is Abort with a reason, which the coordinator keeps with
// the transaction's outcome and logs with who asked.
func (c *Client) AbortBecause(ctx context.Context, id concord.TxID, reason string) (wire.TxStatus, error) {
	return c.operate(ctx, id, "abort", wire.ActionRequest{Reason: reason})
}

// Timeline returns the events the coordinator keeps of a transaction, oldest
// first (none for one finished long ago or before the coordinator's
// restart).
func (c *Client) Timeline(ctx context.Context, id concord.TxID) (wire.TxTimeline, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return wire.TxTimeline{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var tl wire.TxTimeline
	err := c.do(ctx, http.MethodGet, wire.TimelinePath(id), nil, &tl)
	return tl, err
}

func (c *Client) operate(ctx context.Context, id concord.TxID, op string, in any) (wire.TxStatus, error) {
	if err := concord.ValidateTxID(id); err != nil {
		return wire.TxStatus{}, fmt.Errorf("%w: %w", ErrInvalidInput, err)
	}
	var st wire.TxStatus
	err := c.do(ctx, http.MethodPost, wire.TransactionPath(id)+"/"+op, in, &st)
	return st, err
}
