package coordinator

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/vfs"
	"github.com/concordtx/concord"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// ErrInvalidOptions is returned by New for Options it cannot use.
var ErrInvalidOptions = errors.New("coordinator: invalid options")

// Defaults for zero Options fields.
const (
	DefaultTimeout          = 5 * time.Second
	DefaultMaxTimeout       = 60 * time.Second
	DefaultMaxBranches      = 16
	DefaultMaxBodyBytes     = 1 << 20
	DefaultRequestTimeout   = 10 * time.Second
	DefaultMaxBatch         = 256
	DefaultMaxInFlight      = 2
	DefaultDecisionDelay    = 2 * time.Millisecond
	DefaultRememberFinished = 100_000
	DefaultCompactInterval  = time.Second
	DefaultProbeTimeout     = 2 * time.Second
	DefaultProbeMax         = time.Minute
	DefaultRefreshAfter     = time.Minute
	DefaultAnswerGrace      = 5 * time.Second
	DefaultShutdownTimeout  = 10 * time.Second
	DefaultListen           = "127.0.0.1:7070"
	DefaultKeepTimelines    = 10_000
	// DefaultIdempotencyWindow is how long a finished transaction is
	// remembered by default.
	DefaultIdempotencyWindow = 24 * time.Hour

	DefaultMaxLive           = 50_000
	DefaultMaxPayloadBytes   = 64 << 10
	DefaultMaxHeaderBytes    = 64 << 10
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	// DefaultUnauthIdleTimeout bounds the wait of a connection that has not
	// authenticated (see Options.UnauthIdleTimeout).
	DefaultUnauthIdleTimeout = 5 * time.Second
	DefaultMaxConns          = 4096
	DefaultMaxConnsPerHost   = 1024
)

// Options configures a Coordinator. Every zero field takes its default.
type Options struct {
	// Dir is the directory of the coordinator's log. Required unless Log is set.
	Dir string
	// FS is the file system of the log; nil means the real one.
	FS wal.FS
	// SegmentSize is the log's segment size; 0 means wal's default.
	SegmentSize int64

	// Participants maps each participant's name to its base URL
	// (http://host:port). Clients name participants; the coordinator only
	// ever calls these addresses.
	Participants map[string]string
	// Transport carries the participant protocol; nil means HTTP to the
	// Participants' URLs. A simulator supplies its own.
	Transport Transport
	// Listen is the address Start listens on when given no listener.
	// Default DefaultListen.
	Listen string
	// AdvertiseURL is the coordinator's own base URL, sent in every PREPARE
	// so that a participant in doubt knows whom to ask. Default: http:// (or
	// https:// with TLS) and the address Start listens on. With TLS it must
	// be https://.
	AdvertiseURL string

	// Clock is the source of time; nil means the wall clock.
	Clock Clock

	// DefaultTimeout is the prepare deadline of a transaction that gives no
	// timeout_ms; MaxTimeout bounds the ones that do.
	DefaultTimeout, MaxTimeout time.Duration
	// MaxBranches bounds the participants of one transaction.
	MaxBranches int
	// MaxBodyBytes bounds a submitted request body; larger ones get 413.
	MaxBodyBytes int64
	// RetryMin and RetryMax bound the backoff between deliveries of a
	// decision to a participant that has not acknowledged it.
	RetryMin, RetryMax time.Duration
	// RequestTimeout bounds one COMMIT or ABORT request to a participant.
	// A PREPARE request is bounded by its transactions' deadlines instead.
	RequestTimeout time.Duration
	// MaxBatch bounds the transactions in one request to a participant;
	// MaxInFlight bounds the requests of each kind in flight to one
	// participant (messages arriving meanwhile are batched). 1 gives the
	// biggest batches and the fewest requests, but each participant then
	// works through one batch at a time (its fsync, the answer and the next
	// request in sequence, not overlapped) and a participant slow to answer
	// one request holds up the next; the default of 2 overlaps two (more
	// made smaller batches and cost more CPU per transaction than they
	// saved in waiting: docs/performance.md).
	MaxBatch, MaxInFlight int
	// DecisionDelay is how long a COMMIT or ABORT waits for others bound to
	// the same participant before it is sent, so that at low load the
	// decisions of several transactions share a request. It is off the
	// client's path: the client is answered once the decision is durable.
	// Negative sends each at once.
	DecisionDelay time.Duration
	// IdempotencyWindow is how long a finished transaction is remembered,
	// from when it finished: inside it, a resubmission of its id is answered
	// with its outcome (never run again; 409 only for a different request)
	// and status and outcome queries answer what it was; past it the id is
	// forgotten (ErrForgotten). It holds across restarts and compactions.
	// Default DefaultIdempotencyWindow (24 hours).
	IdempotencyWindow time.Duration
	// RememberPath is the file that keeps the finished transactions for
	// the window (a directory: a Pebble database). Default: remembered in Dir. With FS
	// set and RememberPath empty they are kept in memory only, for tests and
	// simulators: a restart then knows what the log still holds.
	RememberPath string
	// RememberFS, when set, is the file system of the remembered set's
	// Pebble database (at RememberPath, default "remembered" in Dir), even
	// with FS set: a simulator gives Pebble's strict in-memory file system
	// (vfs.NewStrictMem) so that a crash loses what was not synced. nil
	// means the operating system's (or, with FS set and no RememberPath,
	// memory only).
	RememberFS vfs.FS
	// RememberFinished bounds how many finished transactions are cached in
	// memory in front of the remembered set (the rest are read from
	// RememberPath).
	RememberFinished int
	// CompactInterval is how often the log is compacted.
	CompactInterval time.Duration
	// ProbeInterval is how often each participant's health endpoint (GET
	// /healthz) is probed, apart from protocol traffic, so that one that
	// stopped answering (or came back) shows without waiting for a
	// transaction. While a participant fails, its probes back off, doubling
	// up to ProbeMax. Zero probes nothing.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe (default DefaultProbeTimeout); ProbeMax
	// is the longest wait between probes of a failing participant
	// (default DefaultProbeMax, at least ProbeInterval).
	ProbeTimeout, ProbeMax time.Duration
	// RefreshAfter: a transaction live for longer than this (a commit a
	// participant has not acknowledged) has its state appended anew at
	// compaction so that the log segments before it can be deleted.
	RefreshAfter time.Duration
	// AnswerGrace is how long past its deadline a submit waits for an
	// outcome before answering "pending" (only a one-phase transaction
	// whose participant does not answer can take that long).
	AnswerGrace time.Duration
	// ShutdownTimeout bounds how long Close lets in-flight requests finish.
	ShutdownTimeout time.Duration

	// VotesHook, for tests only (nil in production), rewrites the votes
	// one participant's answer holds on one transaction before they are
	// counted (a simulator plants a defect with it, such as taking the
	// first of two votes).
	VotesHook func(vs []wire.VoteReply) []wire.VoteReply
	// CrashHook, when set, is called at every CrashPoint; a non-nil error
	// stops the coordinator there as if its process had died. For tests;
	// nil in production.
	CrashHook func(p CrashPoint, id concord.TxID) error
	// Logf receives operational messages; nil sends them to Logger at
	// level Info (or discards them when Logger is nil too).
	Logf func(format string, args ...any)
	// Logger receives structured logs, each with the transaction id: state
	// changes worth knowing (a decision not delivered, a participant
	// failing or back, operator actions) at Info and Warn; every decision
	// and END at Debug. Nothing is logged per message at Info. nil
	// discards them.
	Logger *slog.Logger
	// KeepTimelines bounds how many finished transactions keep their event
	// history for the console (live ones always keep theirs).
	KeepTimelines int

	// Security and limits (docs/security.md).

	// TLS, when set, makes Start serve HTTPS with it (see
	// security.TLS.ServerConfig) and advertise an https:// URL.
	TLS *tls.Config
	// ClientTLS, when set, is the TLS configuration of the calls to
	// participants: the coordinator's own certificate, presented to them,
	// and the CA their certificates must be signed by. A participant's
	// certificate must also name the participant (security.VerifyPeer),
	// unless ClientTLS has a VerifyConnection of its own. Ignored when
	// Transport is set.
	ClientTLS *tls.Config
	// Auth, when set, makes every request but GET /healthz and the
	// console's static files authenticate (a verified client certificate
	// or a bearer token; 401 otherwise) and authorizes it: a client sees
	// and acts on the transactions it submitted, an operator on all, a
	// participant (a certificate naming a configured participant) asks
	// only about its own transactions' outcomes; 403 otherwise. nil
	// authenticates no one and lets everyone do everything.
	Auth *security.Authenticator
	// MaxLive bounds the live transactions (submitted and not yet finished:
	// preparing, or decided and awaiting acknowledgements); past it a new
	// submission is answered 503 with Retry-After. Default DefaultMaxLive.
	MaxLive int
	// MaxPayloadBytes bounds one branch's payload; a larger one is 400.
	MaxPayloadBytes int
	// MaxHeaderBytes, ReadHeaderTimeout, ReadTimeout and IdleTimeout
	// configure the http.Server of Start.
	MaxHeaderBytes                              int
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxConns and MaxConnsPerHost bound the connections Start's listener
	// keeps open, overall and from one remote IP address; one past them is
	// closed at accept. UnauthIdleTimeout is how long a connection on
	// which no request has authenticated may wait for its next request.
	// Defaults DefaultMaxConns, DefaultMaxConnsPerHost,
	// DefaultUnauthIdleTimeout.
	MaxConns, MaxConnsPerHost int
	UnauthIdleTimeout         time.Duration
}

// withDefaults fills zero fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	setDur := func(d *time.Duration, def time.Duration) {
		if *d == 0 {
			*d = def
		}
	}
	setDur(&o.DefaultTimeout, DefaultTimeout)
	setDur(&o.MaxTimeout, DefaultMaxTimeout)
	setDur(&o.RetryMin, tpc.DefaultConfig.RetryMin)
	setDur(&o.RetryMax, tpc.DefaultConfig.RetryMax)
	setDur(&o.RequestTimeout, DefaultRequestTimeout)
	setDur(&o.CompactInterval, DefaultCompactInterval)
	setDur(&o.ProbeTimeout, DefaultProbeTimeout)
	setDur(&o.ProbeMax, DefaultProbeMax)
	o.ProbeMax = max(o.ProbeMax, o.ProbeInterval)
	setDur(&o.RefreshAfter, DefaultRefreshAfter)
	setDur(&o.AnswerGrace, DefaultAnswerGrace)
	setDur(&o.IdempotencyWindow, DefaultIdempotencyWindow)
	setDur(&o.ShutdownTimeout, DefaultShutdownTimeout)
	setDur(&o.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	setDur(&o.ReadTimeout, DefaultReadTimeout)
	setDur(&o.IdleTimeout, DefaultIdleTimeout)
	setDur(&o.UnauthIdleTimeout, DefaultUnauthIdleTimeout)
	if o.MaxConns == 0 {
		o.MaxConns = DefaultMaxConns
	}
	if o.MaxConnsPerHost == 0 {
		o.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	if o.MaxLive == 0 {
		o.MaxLive = DefaultMaxLive
	}
	if o.MaxPayloadBytes == 0 {
		o.MaxPayloadBytes = DefaultMaxPayloadBytes
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if o.MaxBranches == 0 {
		o.MaxBranches = DefaultMaxBranches
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	if o.DecisionDelay == 0 {
		o.DecisionDelay = DefaultDecisionDelay
	}
	if o.RememberFinished == 0 {
		o.RememberFinished = DefaultRememberFinished
	}
	if o.KeepTimelines == 0 {
		o.KeepTimelines = DefaultKeepTimelines
	}
	if o.Logf == nil {
		if l := o.Logger; l != nil {
			o.Logf = func(format string, args ...any) { l.Info(fmt.Sprintf(format, args...)) }
		} else {
			o.Logf = func(string, ...any) {}
		}
	}
	return o, o.validate()
}

func (o Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...))
	}
	if o.Dir == "" {
		return bad("Dir (the log directory) is empty")
	}
	if len(o.Participants) == 0 && o.Transport == nil {
		return bad("no participants")
	}
	for name, u := range o.Participants {
		if err := tpc.CheckBegin("x", []tpc.Branch{{Participant: name}}); err != nil {
			return bad("participant name %q: %v", name, err)
		}
		if err := checkBaseURL(u); err != nil {
			return bad("participant %s: %v", name, err)
		}
		if o.ClientTLS != nil && o.Transport == nil && !strings.HasPrefix(u, "https://") {
			return bad("participant %s: %s: with ClientTLS every participant is called over https://", name, u)
		}
	}
	if o.AdvertiseURL != "" {
		if err := checkBaseURL(o.AdvertiseURL); err != nil {
			return bad("AdvertiseURL: %v", err)
		}
		if o.TLS != nil && !strings.HasPrefix(o.AdvertiseURL, "https://") {
			// Participants follow it to learn outcomes: under TLS a plain
			// http one would let anyone on the path answer for us.
			return bad("AdvertiseURL %s: with TLS the coordinator must be advertised as https://", o.AdvertiseURL)
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"DefaultTimeout", o.DefaultTimeout}, {"MaxTimeout", o.MaxTimeout}, {"RetryMin", o.RetryMin},
		{"RetryMax", o.RetryMax}, {"RequestTimeout", o.RequestTimeout}, {"CompactInterval", o.CompactInterval},
		{"RefreshAfter", o.RefreshAfter}, {"AnswerGrace", o.AnswerGrace}, {"ShutdownTimeout", o.ShutdownTimeout},
		{"IdempotencyWindow", o.IdempotencyWindow},
		{"ReadHeaderTimeout", o.ReadHeaderTimeout}, {"ReadTimeout", o.ReadTimeout}, {"IdleTimeout", o.IdleTimeout},
		{"ProbeInterval", o.ProbeInterval}, {"ProbeTimeout", o.ProbeTimeout}, {"ProbeMax", o.ProbeMax},
	} {
		if d.v < 0 {
			return bad("%s %v is negative", d.name, d.v)
		}
	}
	if o.DefaultTimeout > o.MaxTimeout {
		return bad("DefaultTimeout %v is above MaxTimeout %v", o.DefaultTimeout, o.MaxTimeout)
	}
	if o.RetryMax < o.RetryMin {
		return bad("RetryMax %v is below RetryMin %v", o.RetryMax, o.RetryMin)
	}
	if o.MaxBranches < 1 || o.MaxBranches > tpc.MaxBranches {
		return bad("MaxBranches %d is outside 1..%d", o.MaxBranches, tpc.MaxBranches)
	}
	if o.MaxBodyBytes < 1 {
		return bad("MaxBodyBytes %d is below 1", o.MaxBodyBytes)
	}
	if o.MaxLive < 1 || o.MaxPayloadBytes < 1 || o.MaxHeaderBytes < 1 {
		return bad("MaxLive %d, MaxPayloadBytes %d and MaxHeaderBytes %d must be at least 1",
			o.MaxLive, o.MaxPayloadBytes, o.MaxHeaderBytes)
	}
	if o.KeepTimelines < 1 {
		return bad("KeepTimelines %d is below 1", o.KeepTimelines)
	}
	if o.MaxBatch < 1 || o.MaxInFlight < 1 || o.RememberFinished < 1 {
		return bad("MaxBatch %d, MaxInFlight %d and RememberFinished %d must be at least 1",
			o.MaxBatch, o.MaxInFlight, o.RememberFinished)
	}
	return nil
}

// checkBaseURL accepts http(s)://host:port with no query or fragment.
func checkBaseURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("URL %q must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("URL %q has no host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("URL %q must not have a query or fragment", s)
	}
	return nil
}
