package security

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// ConnLimits bound the connections a listener keeps open.
type ConnLimits struct {
	// Max is the most connections open at once; past it a new connection
	// is closed at once. 0 means no bound.
	Max int
	// PerHost is the most open at once from one remote IP address. 0
	// means no bound.
	PerHost int
	// UnauthIdle is how long a connection on which no request has yet
	// authenticated may wait for its next request (before its first one,
	// or idle between requests) before it is closed. 0 means no bound
	// beyond the server's own timeouts.
	UnauthIdle time.Duration
	// Now is the clock of UnauthIdle's deadlines; nil is time.Now.
	Now func() time.Time
}

// LimitedListener is a listener that enforces ConnLimits. Give its
// ConnState and ConnContext to the http.Server that serves it, and call
// MarkAuthenticated in the handler once a request has authenticated.
type LimitedListener struct {
	net.Listener
	lim     ConnLimits
	mu      sync.Mutex
	open    int
	perHost map[string]int
	refused atomic.Int64
}

// LimitListener wraps ln with l.
func LimitListener(ln net.Listener, l ConnLimits) *LimitedListener {
	if l.Now == nil {
		l.Now = time.Now
	}
	return &LimitedListener{Listener: ln, lim: l, perHost: map[string]int{}}
}

// Open is the number of connections open now.
func (l *LimitedListener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Refused is the number of connections closed at accept for a limit.
func (l *LimitedListener) Refused() int64 { return l.refused.Load() }

// Accept returns the next connection within the limits; one past them is
// closed without a word (an answer would cost what the limit saves).
func (l *LimitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		ok := (l.lim.Max <= 0 || l.open < l.lim.Max) && (l.lim.PerHost <= 0 || l.perHost[host] < l.lim.PerHost)
		if ok {
			l.open++
			l.perHost[host]++
		}
		l.mu.Unlock()
		if !ok {
			l.refused.Add(1)
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, l: l, host: host}, nil
	}
}

func (l *LimitedListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.perHost[host]--; l.perHost[host] <= 0 {
		delete(l.perHost, host)
	}
}

// limitedConn is one connection: counted until closed, with a short read
// deadline while it waits unauthenticated.
type limitedConn struct {
	net.Conn
	l      *LimitedListener
	host   string
	once   sync.Once
	authed atomic.Bool
	active atomic.Bool // serving a request: its own timeouts apply
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

// SetReadDeadline caps the deadline at UnauthIdle from now while the
// connection waits for a request and none on it has authenticated.
func (c *limitedConn) SetReadDeadline(t time.Time) error {
	if d := c.l.lim.UnauthIdle; d > 0 && !c.authed.Load() && !c.active.Load() {
		if limit := c.l.lim.Now().Add(d); t.IsZero() || t.After(limit) {
			t = limit
		}
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	if err := c.SetReadDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetWriteDeadline(t)
}

func unwrap(c net.Conn) *limitedConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	lc, _ := c.(*limitedConn)
	return lc
}

// ConnState is the http.Server.ConnState hook: it tells a connection
// whether it is serving a request or waiting for one. A connection that
// becomes idle unauthenticated gets UnauthIdle from now to send its next
// request.
func (l *LimitedListener) ConnState(c net.Conn, s http.ConnState) {
	lc := unwrap(c)
	if lc == nil {
		return
	}
	switch s {
	case http.StateActive:
		lc.active.Store(true)
	case http.StateIdle:
		lc.active.Store(false)
	}
}

type connKey struct{}

// ConnContext is the http.Server.ConnContext hook that lets
// MarkAuthenticated find the connection of a request.
func (l *LimitedListener) ConnContext(ctx context.Context, c net.Conn) context.Context {
	if lc := unwrap(c); lc != nil {
		return context.WithValue(ctx, connKey{}, lc)
	}
	return ctx
}

// MarkAuthenticated records that a request on the connection of ctx (a
// request context of a server with LimitedListener's hooks) authenticated:
// the connection then keeps the server's idle timeout. Without such a
// connection it does nothing.
func MarkAuthenticated(ctx context.Context) {
	if lc, ok := ctx.Value(connKey{}).(*limitedConn); ok {
		lc.authed.Store(true)
	}
}

// LogLimiter lets at most Burst lines through in each Every and counts the
// rest, for log lines anyone can cause (refused requests, failed TLS
// handshakes): a flood of them must not flood the log. The zero value lets
// 5 a second through. It is safe for concurrent use.
type LogLimiter struct {
	Every time.Duration
	Burst int
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu         sync.Mutex
	start      time.Time
	n          int
	suppressed int64
}

// Allow reports whether a line may be logged now, and how many were
// suppressed since the last one allowed.
func (l *LogLimiter) Allow() (bool, int64) {
	now := time.Now
	if l.Now != nil {
		now = l.Now
	}
	every, burst := l.Every, l.Burst
	if every <= 0 {
		every = time.Second
	}
	if burst <= 0 {
		burst = 5
	}
	t := now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.Sub(l.start) >= every || t.Before(l.start) {
		l.start, l.n = t, 0
	}
	if l.n >= burst {
		l.suppressed++
		return false, 0
	}
	l.n++
	s := l.suppressed
	l.suppressed = 0
	return true, s
}

// Warn logs msg at Warn level through logger if Allow lets it, adding the
// count of lines suppressed before it.
func (l *LogLimiter) Warn(logger *slog.Logger, msg string, args ...any) {
	ok, s := l.Allow()
	if !ok {
		return
	}
	if s > 0 {
		args = append(args, "suppressed", s)
	}
	logger.Warn(msg, args...)
}

// Writer returns an io.Writer for an http.Server.ErrorLog (log.New(w, "",
// 0)) that passes each line through l to logger at Warn level: the
// server's complaints (failed TLS handshakes, bad requests) are strangers'
// to cause.
func (l *LogLimiter) Writer(logger *slog.Logger) *LimitedLogWriter {
	return &LimitedLogWriter{l: l, logger: logger}
}

// LimitedLogWriter is LogLimiter.Writer's writer.
type LimitedLogWriter struct {
	l      *LogLimiter
	logger *slog.Logger
}

func (w *LimitedLogWriter) Write(p []byte) (int, error) {
	msg := string(p)
	if n := len(msg); n > 0 && msg[n-1] == '\n' {
		msg = msg[:n-1]
	}
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	w.l.Warn(w.logger, "http server", "err", msg)
	return len(p), nil
}
