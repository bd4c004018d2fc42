package participant

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Clock is the source of time for a Server: Now for timestamps and After
// for the in-doubt loop's waits. Tests pass a fake one (see
// participanttest.FakeClock) so that no test sleeps.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

var _ Clock = realClock{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// RealClock is the wall clock.
var RealClock Clock = realClock{}

// Options configures a Server. Zero fields take the values of
// DefaultOptions; Resource is required.
type Options struct {
	// Resource is the service's transactional resource. If it also
	// implements OnePhaseResource, one-phase requests use it.
	Resource Resource
	// Coordinator is the base URL (http://host:port) asked about any
	// transaction whose PREPARE named no coordinator, and about a
	// recovered one whose resource did not keep the coordinator its
	// PREPARE named. A recovered transaction whose coordinator was kept
	// (Resource.Recover) is asked about there, whatever Coordinator is
	// now.
	Coordinator string
	// Clock defaults to RealClock.
	Clock Clock
	// HTTPClient makes the in-doubt outcome queries; nil means a client
	// from wire.NewHTTPClient. With CoordinatorIdentity, the server uses it
	// only to ask an https coordinator whose verified certificate is in the
	// coordinator role and names CoordinatorIdentity (it gives it the TLS
	// configuration; see security.WithClientTLS), and follows no redirect.
	HTTPClient *http.Client
	// CoordinatorIdentity, when set, is the only identity (of a verified
	// TLS client certificate in the coordinator role, see security.Identity
	// and security.Role) whose PREPARE, COMMIT and ABORT are accepted;
	// others are answered 401 or 403 and change nothing. It also makes the
	// server TLS-only towards the coordinator: Coordinator, and the
	// coordinator a PREPARE names, must be https (400 otherwise, and no
	// vote). Empty accepts every caller (plain HTTP, development). It is
	// kept with every transaction prepared (CoordinatorRef.Identity), and a
	// transaction prepared under another identity is not asked about (see
	// the package documentation).
	CoordinatorIdentity string
	// Logger receives in-doubt resolution and failure reports; nil
	// discards them.
	Logger *slog.Logger
	// Retention is the time rule the Resource remembers decisions by; set
	// it to the resource's (filestore.Options.Retention, pgxa and mysqlxa
	// Options.Remember). The Server uses its ClockSkew: a COMMIT carrying
	// the transaction's deadline, for a transaction the resource holds no
	// record of, is acknowledged as committed and forgotten once
	// Retention.ForgetAt of that deadline has passed by Clock (see
	// docs/protocol.md). Zero fields take DefaultRetention's.
	Retention Retention

	// MaxConcurrency bounds the resource calls in flight at once, across
	// every request and the in-doubt loop.
	MaxConcurrency int
	// CallTimeout bounds one resource call or outcome query.
	CallTimeout time.Duration
	// InDoubtAfter is how long a prepared transaction waits for a decision
	// before the coordinator is asked.
	InDoubtAfter time.Duration
	// QueryMin and QueryMax bound the capped exponential backoff between
	// outcome queries. Queries never stop while the transaction is prepared.
	QueryMin, QueryMax time.Duration
	// TickInterval is how often the in-doubt loop looks for transactions
	// to ask about.
	TickInterval time.Duration
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes int64
	// MaxBatch bounds the transactions (or ids) in one request; more is
	// answered 400.
	MaxBatch int
	// Retain is how many decided transactions are remembered in memory to
	// answer duplicates and refuse late prepares without a resource call.
	// It is a cache: the Resource answers what it forgot, as it must after
	// a restart anyway. It is kept small by default because inserting into
	// and evicting from a large table misses the processor's caches on
	// every transaction.
	Retain int
	// Shards is the number of independently locked partitions of the
	// transaction table.
	Shards int
}

// DefaultOptions holds the defaults for Options' zero fields.
var DefaultOptions = Options{
	Clock:          RealClock,
	MaxConcurrency: 64,
	CallTimeout:    30 * time.Second,
	InDoubtAfter:   5 * time.Second,
	QueryMin:       250 * time.Millisecond,
	QueryMax:       30 * time.Second,
	TickInterval:   100 * time.Millisecond,
	MaxBodyBytes:   4 << 20,
	MaxBatch:       4096,
	Retain:         10_000,
	Shards:         16,
}

// ErrBadOptions is returned by NewServer for invalid Options.
var ErrBadOptions = errors.New("participant: bad options")

func (o *Options) setDefaults() {
	d := DefaultOptions
	if o.Clock == nil {
		o.Clock = d.Clock
	}
	if o.MaxConcurrency == 0 {
		o.MaxConcurrency = d.MaxConcurrency
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = d.CallTimeout
	}
	if o.InDoubtAfter == 0 {
		o.InDoubtAfter = d.InDoubtAfter
	}
	if o.QueryMin == 0 {
		o.QueryMin = d.QueryMin
	}
	if o.QueryMax == 0 {
		o.QueryMax = max(d.QueryMax, o.QueryMin)
	}
	if o.TickInterval == 0 {
		o.TickInterval = d.TickInterval
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = d.MaxBodyBytes
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = d.MaxBatch
	}
	if o.Retain == 0 {
		o.Retain = d.Retain
	}
	if o.Shards == 0 {
		o.Shards = d.Shards
	}
}

func (o *Options) validate() error {
	if o.Resource == nil {
		return fmt.Errorf("%w: Resource is required", ErrBadOptions)
	}
	if o.Coordinator != "" {
		if err := o.checkCoordinator(o.Coordinator); err != nil {
			return fmt.Errorf("%w: Coordinator: %v", ErrBadOptions, err)
		}
	}
	for _, c := range []struct {
		name string
		v    int64
	}{
		{"MaxConcurrency", int64(o.MaxConcurrency)},
		{"CallTimeout", int64(o.CallTimeout)},
		{"InDoubtAfter", int64(o.InDoubtAfter)},
		{"QueryMin", int64(o.QueryMin)},
		{"QueryMax", int64(o.QueryMax)},
		{"TickInterval", int64(o.TickInterval)},
		{"MaxBodyBytes", o.MaxBodyBytes},
		{"MaxBatch", int64(o.MaxBatch)},
		{"Retain", int64(o.Retain)},
		{"Shards", int64(o.Shards)},
	} {
		if c.v <= 0 {
			return fmt.Errorf("%w: %s is %d, must be positive", ErrBadOptions, c.name, c.v)
		}
	}
	if o.QueryMax < o.QueryMin {
		return fmt.Errorf("%w: QueryMax %v is below QueryMin %v", ErrBadOptions, o.QueryMax, o.QueryMin)
	}
	if err := o.Retention.Validate(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOptions, err)
	}
	return nil
}

// checkCoordinator accepts a coordinator URL that s may follow: with
// CoordinatorIdentity (TLS: the coordinator is known by its certificate)
// an https URL only, since over plain http nothing proves who answers;
// without, any URL checkCoordinatorURL accepts.
func (o *Options) checkCoordinator(s string) error {
	if err := checkCoordinatorURL(s); err != nil {
		return err
	}
	if o.CoordinatorIdentity != "" && !strings.HasPrefix(s, "https://") {
		return fmt.Errorf("%q: with TLS (CoordinatorIdentity %q) the coordinator is reached over https only", s, o.CoordinatorIdentity)
	}
	return nil
}

// checkCoordinatorURL accepts an absolute http or https URL with a host.
func checkCoordinatorURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return fmt.Errorf("%q: no host", s)
	}
	return nil
}
