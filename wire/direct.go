package wire

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord"
)

// DirectClient sends the participant protocol's requests to one participant
// over plain HTTP/1.1 keep-alive connections of its own. A request is
// written whole in one write and its answer read on the caller's goroutine:
// unlike http.Transport, no per-connection reader and writer goroutines sit
// between the caller and the socket, which saves two goroutine handoffs per
// request. It speaks only http:// (use ParticipantClient for TLS or a
// custom http.Client) and is safe for concurrent use.
type DirectClient struct {
	host   string // Host header and dial address
	addr   string
	prefix string // path of the base URL, without a trailing slash

	mu     sync.Mutex
	idle   []*directConn // most recently used last
	closed bool
}

// Bounds of a DirectClient's connection pool.
const (
	directMaxIdle     = 256
	directIdleTimeout = 30 * time.Second // below the participants' idle timeout, so an idle conn is rarely found closed
	directMaxAnswer   = 64 << 20
	directDialTimeout = 5 * time.Second
)

type directConn struct {
	nc       net.Conn
	br       *bufio.Reader
	wbuf     []byte           // request scratch
	body     bytes.Buffer     // answer scratch
	limit    io.LimitedReader // bounds the answer read into body
	live     liveness
	lastUsed time.Time
}

// NewDirectClient returns a DirectClient for the participant at baseURL,
// which must be an http:// URL.
func NewDirectClient(baseURL string) (*DirectClient, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("participant URL %q: want http://host[:port][/path]", baseURL)
	}
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), "80")
	}
	return &DirectClient{host: u.Host, addr: addr, prefix: strings.TrimRight(u.EscapedPath(), "/")}, nil
}

// Prepare POSTs req to the participant's PathPrepare.
func (d *DirectClient) Prepare(ctx context.Context, req PrepareRequest) (PrepareResponse, error) {
	var resp PrepareResponse
	q := asked{txs: req.Transactions}
	err := d.post(ctx, PathPrepare, &req, nil, func(b []byte) error {
		return decodePrepareAnswer(b, &resp, q)
	})
	return resp, err
}

// Commit POSTs ids to the participant's PathCommit.
func (d *DirectClient) Commit(ctx context.Context, ids []concord.TxID) (DecisionResponse, error) {
	return d.decide(ctx, PathCommit, DecisionRequest{IDs: ids})
}

// Abort POSTs ids to the participant's PathAbort.
func (d *DirectClient) Abort(ctx context.Context, ids []concord.TxID) (DecisionResponse, error) {
	return d.decide(ctx, PathAbort, DecisionRequest{IDs: ids})
}

// CommitRequest POSTs req to the participant's PathCommit.
func (d *DirectClient) CommitRequest(ctx context.Context, req DecisionRequest) (DecisionResponse, error) {
	return d.decide(ctx, PathCommit, req)
}

// AbortRequest POSTs req to the participant's PathAbort.
func (d *DirectClient) AbortRequest(ctx context.Context, req DecisionRequest) (DecisionResponse, error) {
	return d.decide(ctx, PathAbort, req)
}

func (d *DirectClient) decide(ctx context.Context, path string, req DecisionRequest) (DecisionResponse, error) {
	var resp DecisionResponse
	q := asked{ids: req.IDs}
	err := d.post(ctx, path, nil, &req, func(b []byte) error {
		return decodeDecisionAnswer(b, &resp, q)
	})
	return resp, err
}

// encodeBody appends the body of a request to b as json.Marshal writes it:
// prepare when set, else decision. It returns b grown, and the body, which
// is in b unless the fast encoder declined. (The requests come by pointer
// rather than as an interface, which would cost an allocation per
// request.)
func encodeBody(b []byte, prepare *PrepareRequest, decision *DecisionRequest) (grown, body []byte, err error) {
	var ok bool
	if prepare != nil {
		b, ok = appendPrepareRequest(b, prepare)
	} else {
		b, ok = appendDecisionRequest(b, decision.IDs, decision.DeadlinesMS)
	}
	if ok {
		return b, b, nil
	}
	if prepare != nil {
		body, err = json.Marshal(*prepare)
	} else {
		body, err = json.Marshal(*decision)
	}
	return b, body, err
}

// CloseIdleConnections closes the idle connections and keeps none from
// then on; requests still work, each on a connection of its own.
func (d *DirectClient) CloseIdleConnections() {
	d.mu.Lock()
	idle := d.idle
	d.idle, d.closed = nil, true
	d.mu.Unlock()
	for _, c := range idle {
		c.nc.Close()
	}
}

// get returns a live idle connection, or nil.
func (d *DirectClient) get(now time.Time) *directConn {
	for {
		d.mu.Lock()
		n := len(d.idle)
		if n == 0 {
			d.mu.Unlock()
			return nil
		}
		c := d.idle[n-1]
		d.idle[n-1] = nil
		d.idle = d.idle[:n-1]
		d.mu.Unlock()
		// The last request's deadline may have passed while it was idle:
		// clear it, or the check below would fail on it.
		if now.Sub(c.lastUsed) < directIdleTimeout && c.br.Buffered() == 0 &&
			c.nc.SetDeadline(time.Time{}) == nil && c.live.alive() {
			return c
		}
		c.nc.Close()
	}
}

func (d *DirectClient) put(c *directConn, now time.Time) {
	c.lastUsed = now
	d.mu.Lock()
	if !d.closed && len(d.idle) < directMaxIdle {
		d.idle = append(d.idle, c)
		c = nil
	}
	d.mu.Unlock()
	if c != nil {
		c.nc.Close()
	}
}

func (d *DirectClient) dial(ctx context.Context) (*directConn, error) {
	dl := net.Dialer{Timeout: directDialTimeout, KeepAlive: 30 * time.Second}
	nc, err := dl.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, err
	}
	c := &directConn{nc: nc, br: bufio.NewReaderSize(nc, 4096)}
	c.live.init(nc)
	return c, nil
}

// post sends a request to path, its body as encodeBody writes it, and
// hands a 2xx answer to decode, with the errors of Do: a non-2xx answer is a
// *StatusError, an answer that does not decode wraps ErrBadJSON, and a
// failure to deliver the request or read the answer is a *url.Error, as
// http.Client returns.
func (d *DirectClient) post(ctx context.Context, path string, prepare *PrepareRequest, decision *DecisionRequest, decode func([]byte) error) error {
	bp := bodyPool.Get().(*[]byte)
	buf, body, err := encodeBody((*bp)[:0], prepare, decision)
	if cap(buf) <= maxPooledBody {
		*bp = buf[:0]
	} else {
		*bp = nil
	}
	defer bodyPool.Put(bp)
	if err != nil {
		return fmt.Errorf("encode request: %w", err) // as Do: not the answer's fault
	}
	err = d.post1(ctx, path, body, decode)
	if err == nil || isAnswerError(err) {
		return err
	}
	return &url.Error{Op: "Post", URL: "http://" + d.host + d.prefix + path, Err: err}
}

// isAnswerError reports whether err is about the answer that came: a
// non-2xx status or a body that does not decode.
func isAnswerError(err error) bool {
	var se *StatusError
	return errors.As(err, &se) || errors.Is(err, ErrBadJSON)
}

func (d *DirectClient) post1(ctx context.Context, path string, body []byte, decode func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c := d.get(time.Now()); c != nil {
		err := d.roundTrip(ctx, c, path, body, decode)
		if !errors.Is(err, errNothingWritten) {
			return err
		}
		// Not a byte of the request left: it is safe to send it again on
		// a fresh connection, as net/http does.
	}
	c, err := d.dial(ctx)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return ctxErr
		}
		return err
	}
	return d.roundTrip(ctx, c, path, body, decode)
}

// bodyPool holds the buffers requests are encoded into. post takes one and
// puts it back when the request is over: roundTrip copies the body into the
// connection's own buffer before writing it, so nothing holds the buffer
// then. One larger than maxPooledBody is dropped instead.
var bodyPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledBody = 64 << 10

// errNothingWritten marks a request of which no byte was written.
var errNothingWritten = errors.New("nothing written")

// roundTrip writes one request on c and reads its answer, handing a 2xx
// answer to decode (which must not keep it: it is c's scratch). c goes back to the pool when it can carry another
// request, and is closed otherwise.
func (d *DirectClient) roundTrip(ctx context.Context, c *directConn, path string, body []byte, decode func([]byte) error) (err error) {
	keep := false
	if dl, ok := ctx.Deadline(); ok {
		c.nc.SetDeadline(dl)
	} else {
		c.nc.SetDeadline(time.Time{})
	}
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			keep = false // the deadline may have been cut short under us
		}
		if err != nil && !errors.Is(err, errNothingWritten) && ctx.Err() != nil {
			err = ctx.Err()
		}
		if keep {
			d.put(c, time.Now())
		} else {
			c.nc.Close()
		}
	}()

	w := append(c.wbuf[:0], "POST "...)
	w = append(w, d.prefix...)
	w = append(w, path...)
	w = append(w, " HTTP/1.1\r\nHost: "...)
	w = append(w, d.host...)
	w = append(w, "\r\nUser-Agent: concord\r\nContent-Type: application/json\r\nAccept: application/json\r\n"...)
	if tp := TraceparentFrom(ctx); tp != "" {
		w = append(w, HeaderTraceparent+": "...)
		w = append(w, tp...)
		w = append(w, "\r\n"...)
	}
	w = append(w, "Content-Length: "...)
	w = strconv.AppendInt(w, int64(len(body)), 10)
	w = append(w, "\r\n\r\n"...)
	w = append(w, body...)
	if cap(w) <= 64<<10 {
		c.wbuf = w
	} else {
		c.wbuf = nil // keep no large buffer in the pool
	}
	if n, err := c.nc.Write(w); err != nil {
		if n == 0 {
			return fmt.Errorf("%w: %v", errNothingWritten, err)
		}
		return err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return err
	}
	c.body.Reset()
	c.limit = io.LimitedReader{R: resp.Body, N: directMaxAnswer + 1}
	n, err := c.body.ReadFrom(&c.limit)
	c.limit.R = nil
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("read %s answer: %w", path, err)
	}
	if n > directMaxAnswer {
		return fmt.Errorf("%w: %s answer of more than %d bytes", ErrBadJSON, path, directMaxAnswer)
	}
	keep = !resp.Close
	b := c.body.Bytes()
	if c.body.Cap() > 1<<20 {
		c.body = bytes.Buffer{} // b stays valid; the pool keeps no large buffer
	}
	if resp.StatusCode/100 != 2 {
		b = b[:min(len(b), 4096)]
		msg := strings.TrimSpace(string(b))
		var er ErrorResponse
		if json.Unmarshal(b, &er) == nil && er.Error != "" {
			msg = er.Error
		}
		return &StatusError{Code: resp.StatusCode, Message: msg}
	}
	if decode != nil {
		if err := decode(b); err != nil {
			return fmt.Errorf("%w: decode POST %s answer: %v", ErrBadJSON, path, err)
		}
	}
	return nil
}
