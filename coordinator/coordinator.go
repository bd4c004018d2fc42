package coordinator

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// Coordinator runs two-phase commit for its clients over the configured
// participants. Its methods are safe for concurrent use.
type Coordinator struct {
	opts      Options
	cfg       tpc.Config
	clock     Clock
	log       *wal.Log
	transport Transport
	table     *table
	known     map[string]bool // configured participants; nil accepts any name
	senders   sync.Map        // participant name -> *sender

	ctx    context.Context // cancelled by Close: aborts requests in flight
	cancel context.CancelFunc

	advertise atomic.Pointer[string]
	haltOnce  sync.Once
	haltErr   error         // set before haltCh is closed
	haltCh    chan struct{} // closed when the coordinator stops doing work
	closing   atomic.Bool

	compactMu    sync.Mutex // one compaction at a time; guards compactTimer
	compactTimer Timer

	probeMu       sync.Mutex // guards probeTimers and probesStopped
	probeTimers   map[string]Timer
	probesStopped bool

	srvMu sync.Mutex
	srv   *http.Server
	ln    net.Listener
	conns *security.LimitedListener

	// afterGuard, set by tests only, runs after a request has passed guard
	// and before it is served: the window in which a route check made
	// apart from the object it names would go stale.
	afterGuard func(*http.Request)

	// refusedLog throttles the lines anyone can cause: refused requests
	// and actions, the HTTP server's complaints (failed TLS handshakes).
	refusedLog refusedLogger

	closeOnce sync.Once
	closeErr  error

	stats counters

	// Operations: metrics, event histories, structured logs.
	metrics   *metrics
	pmetrics  sync.Map // participant name -> *participantMetrics
	timelines *timelines
	logger    *slog.Logger
	startedAt time.Time
}

// New opens the log in opts.Dir, recovers every transaction it holds
// (re-driving commits not yet acknowledged and aborting what was undecided)
// and returns a coordinator ready to take transactions: call Start to serve
// HTTP, or use Handler with a server of your own. Close releases it.
func New(opts Options) (*Coordinator, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Coordinator{
		opts:   opts,
		cfg:    tpc.Config{RetryMin: opts.RetryMin, RetryMax: opts.RetryMax},
		clock:  opts.Clock,
		haltCh: make(chan struct{}),

		timelines: newTimelines(opts.KeepTimelines),
		logger:    opts.Logger,
		startedAt: opts.Clock.Now(),
	}
	if c.logger == nil {
		c.logger = discardLogger
	}
	c.metrics = newMetrics(c)
	for name := range opts.Participants {
		c.participantMetrics(name) // so that every configured participant shows from the start
	}
	if len(opts.Participants) > 0 {
		c.known = make(map[string]bool, len(opts.Participants))
		for name := range opts.Participants {
			c.known[name] = true
		}
	}
	c.transport = opts.Transport
	if c.transport == nil {
		t := NewHTTPTransport(opts.Participants, nil)
		if opts.ClientTLS != nil {
			// One client per participant, each accepting only the
			// certificate that names that participant.
			for name, u := range opts.Participants {
				cfg := opts.ClientTLS.Clone()
				if cfg.VerifyConnection == nil {
					cfg.VerifyConnection = security.VerifyPeer(security.RoleParticipant, name)
				}
				hc, err := security.WithClientTLS(wire.NewHTTPClient(0), cfg)
				if err != nil {
					return nil, err
				}
				t.clients[name] = &wire.ParticipantClient{BaseURL: u, HTTP: hc}
			}
		}
		c.transport = t
	}
	if opts.AdvertiseURL != "" {
		u := opts.AdvertiseURL
		c.advertise.Store(&u)
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log, err = wal.Open(wal.Options{Dir: opts.Dir, FS: opts.FS, SegmentSize: opts.SegmentSize, Logger: opts.Logger})
	if err != nil {
		c.cancel()
		return nil, fmt.Errorf("coordinator log: %w", err)
	}
	store, err := c.openRemembered()
	if err != nil {
		c.cancel()
		c.log.Close()
		return nil, err
	}
	c.table = newTable(opts.RememberFinished, store)
	resume, err := c.recover()
	if err != nil {
		c.cancel()
		c.log.Close()
		store.close(true)
		return nil, err
	}
	for _, r := range resume {
		r.tx.mu.Lock()
		c.performLocked(r.tx, r.ready, false)
		r.tx.mu.Unlock()
	}
	c.armCompaction()
	c.startProbes()
	return c, nil
}

// Start listens on ln (nil: on Options.Listen) and serves the HTTP API in
// the background until Close. It returns once the listener is open, with an
// error naming the address if it cannot be.
func (c *Coordinator) Start(ln net.Listener) error {
	if ln == nil {
		var err error
		ln, err = net.Listen("tcp", c.opts.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", c.opts.Listen, err)
		}
	}
	c.srvMu.Lock()
	defer c.srvMu.Unlock()
	if c.srv != nil {
		ln.Close()
		return errors.New("coordinator: already started")
	}
	lim := security.ConnLimits{Max: c.opts.MaxConns, PerHost: c.opts.MaxConnsPerHost} // socket deadlines are wall-clock time
	if c.opts.Auth != nil {
		lim.UnauthIdle = c.opts.UnauthIdleTimeout
	}
	c.conns = security.LimitListener(ln, lim)
	ln = c.conns
	scheme := "http://"
	if c.opts.TLS != nil {
		scheme = "https://"
		ln = tls.NewListener(ln, c.opts.TLS)
	}
	if c.advertise.Load() == nil {
		u := scheme + ln.Addr().String()
		c.advertise.Store(&u)
	}
	c.ln = ln
	c.srv = &http.Server{Handler: c.Handler(), ReadHeaderTimeout: c.opts.ReadHeaderTimeout, ReadTimeout: c.opts.ReadTimeout,
		IdleTimeout: c.opts.IdleTimeout, MaxHeaderBytes: c.opts.MaxHeaderBytes, TLSConfig: c.opts.TLS,
		ConnState: c.conns.ConnState, ConnContext: c.conns.ConnContext,
		// A stranger's failed TLS handshake is logged, at most a few a second.
		ErrorLog: log.New(c.refusedLog.lim.Writer(c.logger), "", 0)}
	go c.srv.Serve(ln)
	return nil
}

// URL returns the coordinator's base URL: Options.AdvertiseURL, or the
// address Start listens on; empty before either is known.
func (c *Coordinator) URL() string { return c.advertiseURL() }

func (c *Coordinator) advertiseURL() string {
	if u := c.advertise.Load(); u != nil {
		return *u
	}
	return ""
}

// Close stops serving (letting requests in flight finish for up to
// Options.ShutdownTimeout), stops sending, and closes the log. What is in
// flight stays in the log: the next New finishes it. Close after a halt
// sends and steps nothing more; it still closes the log, which writes out
// what the log had already accepted.
func (c *Coordinator) Close() error {
	c.closeOnce.Do(func() {
		c.srvMu.Lock()
		srv := c.srv
		c.srvMu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.ShutdownTimeout)
			srv.Shutdown(ctx)
			cancel()
		}
		c.closing.Store(true)
		halted := c.stopped() // a halted coordinator writes nothing more
		c.halt(ErrClosed)
		c.compactMu.Lock()
		if c.compactTimer != nil {
			c.compactTimer.Stop()
		}
		c.compactMu.Unlock()
		c.stopProbes()
		c.cancel()
		c.senders.Range(func(_, v any) bool {
			s := v.(*sender)
			s.commitHold.close()
			s.abortHold.close()
			s.prepare.Close()
			s.commit.Close()
			s.abort.Close()
			return true
		})
		for _, t := range c.table.liveList() { // t.mu is never taken under a shard lock
			t.mu.Lock()
			if t.timer != nil {
				t.timer.Stop()
			}
			t.mu.Unlock()
		}
		if t, ok := c.transport.(interface{ CloseIdleConnections() }); ok && c.opts.Transport == nil {
			t.CloseIdleConnections()
		}
		// The remembered set before the log: what it is written from is
		// in the log until then.
		var errs []error
		if err := c.table.store.close(halted); err != nil {
			errs = append(errs, fmt.Errorf("close the remembered transactions: %w", err))
		}
		if err := c.log.Close(); err != nil && !errors.Is(err, wal.ErrClosed) {
			errs = append(errs, fmt.Errorf("close log: %w", err))
		}
		c.closeErr = errors.Join(errs...)
	})
	return c.closeErr
}

// openRemembered opens the remembered set (Options.RememberPath).
func (c *Coordinator) openRemembered() (*remembered, error) {
	path := c.opts.RememberPath
	if path == "" && c.opts.FS != nil && c.opts.RememberFS == nil {
		return newRemembered(&memBackend{}, math.MaxInt64, c.opts.IdempotencyWindow, c.clock, c.opts.Logf), nil
	}
	if path == "" {
		path = filepath.Join(c.opts.Dir, "remembered")
	}
	b, oldest, err := openPebble(path, c.opts.RememberFS)
	if err != nil {
		return nil, fmt.Errorf("coordinator: %w", err)
	}
	return newRemembered(b, oldest, c.opts.IdempotencyWindow, c.clock, c.opts.Logf), nil
}

// halt stops the coordinator doing any more work: nothing more is logged,
// sent or answered. A failed log append halts it (the log is poisoned, so
// nothing it did not make durable may be acted on), and so do Close and
// the crash hook.
func (c *Coordinator) halt(err error) {
	c.haltOnce.Do(func() {
		c.haltErr = err
		if !errors.Is(err, ErrClosed) {
			c.opts.Logf("coordinator halted: %v", err)
		}
		close(c.haltCh)
	})
}

// stopped reports whether the coordinator has halted or is closing.
func (c *Coordinator) stopped() bool {
	select {
	case <-c.haltCh:
		return true
	default:
		return false
	}
}

// Done is closed when the coordinator stops working: closed, or halted by
// a log failure (see Halted).
func (c *Coordinator) Done() <-chan struct{} { return c.haltCh }

// Halted returns the reason the coordinator stopped working, or nil.
func (c *Coordinator) Halted() error {
	if !c.stopped() {
		return nil
	}
	return c.haltErr
}
