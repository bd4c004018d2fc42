package bench

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"time"
)

// ErrBadOptions is returned by Run for options that cannot work.
var ErrBadOptions = errors.New("bad bench options")

// Services are the travel services a transaction books, in branch order.
var Services = []string{"flights", "hotels", "cars"}

// Defaults for zero Options fields.
const (
	DefaultConcurrency   = 16
	DefaultDuration      = 10 * time.Second
	DefaultSKUs          = 16
	DefaultServiceProcs  = 1
	DefaultStartTimeout  = 30 * time.Second
	DefaultProgressEvery = time.Second
	DefaultFloorSamples  = 200
	DefaultSampleEvery   = 30 * time.Second
)

// Options configures one bench run: one or more load phases (each pair of
// Concurrency and Participants) against one system.
type Options struct {
	// CoordinatorURL is the coordinator of a running system. Empty: Run
	// starts a coordinator and the three travel services as processes of
	// Binary, with fresh data directories under Dir.
	CoordinatorURL string
	// ParticipantURLs maps service names to base URLs of a running system,
	// read for their counters (GET /v1/stats); optional.
	ParticipantURLs map[string]string
	// Binary is the concord executable to start; required without
	// CoordinatorURL.
	Binary string
	// Dir holds the data directories and logs of started processes and the
	// floor measurement's log; required.
	Dir string
	// ProcessArgs are extra flags for started processes, by role
	// ("coordinator", "participant").
	ProcessArgs map[string][]string

	// Concurrency lists the numbers of concurrent clients, one phase each;
	// default [DefaultConcurrency].
	Concurrency []int
	// Participants lists the branches per transaction (1 to 3), one phase
	// each, crossed with Concurrency; default [3].
	Participants []int
	// Duration bounds each phase unless Count is set; default DefaultDuration.
	Duration time.Duration
	// Count, when above zero, is the number of transactions of each phase.
	Count int
	// AbortRatio is the share of transactions built to abort (one branch
	// asks for a SKU the service does not offer), from 0 to 1.
	AbortRatio float64
	// ClientIDs makes each transaction carry an id of the client's (an
	// idempotency key, as the Go client sends), which the coordinator looks
	// up at admission and keeps for its idempotency window; without it the
	// coordinator makes ids up.
	ClientIDs bool
	// SKUs is the number of SKUs each started service offers, each with the
	// largest capacity a service accepts, spread over the clients; default
	// DefaultSKUs.
	SKUs int
	// TimeoutMS is each transaction's prepare timeout; 0 means the
	// coordinator's default.
	TimeoutMS int64
	// ServiceProcs is the GOMAXPROCS of each service the bench starts;
	// default DefaultServiceProcs. Negative leaves Go's default (one per
	// core). The bench runs five processes on the machine: a service needs
	// far less than a core, and one with a second processor spends CPU
	// waking and spinning threads that the coordinator needs.
	ServiceProcs int

	// ProfileDir, when set, receives CPU profiles of every started process
	// and of the bench itself, taken over the middle half of each phase
	// (the processes serve net/http/pprof on loopback for it).
	ProfileDir string

	// FloorSamples is the number of fsyncs and round trips timed for the
	// floor; default DefaultFloorSamples. Negative skips the floor.
	FloorSamples int
	// StartTimeout bounds the start of each process; default
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// Progress receives a line every ProgressEvery; nil is silent.
	Progress      io.Writer
	ProgressEvery time.Duration
	// SampleEvery is how often the processes' heap and goroutines are
	// recorded during a phase; default DefaultSampleEvery.
	SampleEvery time.Duration
}

func (o Options) withDefaults() (Options, error) {
	if len(o.Concurrency) == 0 {
		o.Concurrency = []int{DefaultConcurrency}
	}
	if len(o.Participants) == 0 {
		o.Participants = []int{3}
	}
	if o.Duration == 0 {
		o.Duration = DefaultDuration
	}
	if o.SKUs == 0 {
		o.SKUs = DefaultSKUs
	}
	if o.ServiceProcs == 0 {
		o.ServiceProcs = DefaultServiceProcs
	}
	if o.FloorSamples == 0 {
		o.FloorSamples = DefaultFloorSamples
	}
	if o.StartTimeout == 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.ProgressEvery == 0 {
		o.ProgressEvery = DefaultProgressEvery
	}
	if o.SampleEvery == 0 {
		o.SampleEvery = DefaultSampleEvery
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o, o.validate()
}

func (o Options) validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadOptions, fmt.Sprintf(format, args...))
	}
	if o.Dir == "" {
		return bad("Dir is empty")
	}
	if o.CoordinatorURL == "" && o.Binary == "" {
		return bad("no coordinator URL and no binary to start one")
	}
	if o.CoordinatorURL == "" && len(o.ParticipantURLs) > 0 {
		return bad("participant URLs given without a coordinator URL")
	}
	if o.CoordinatorURL != "" {
		if err := checkURL(o.CoordinatorURL); err != nil {
			return bad("coordinator: %v", err)
		}
	}
	for name, u := range o.ParticipantURLs {
		if err := checkURL(u); err != nil {
			return bad("participant %s: %v", name, err)
		}
	}
	for _, c := range o.Concurrency {
		if c < 1 || c > 100_000 {
			return bad("concurrency %d is outside 1..100000", c)
		}
	}
	for _, p := range o.Participants {
		if p < 1 || p > len(Services) {
			return bad("participants %d is outside 1..%d", p, len(Services))
		}
	}
	switch {
	case o.Duration < 0:
		return bad("duration %v is negative", o.Duration)
	case o.Count < 0:
		return bad("count %d is negative", o.Count)
	case o.AbortRatio < 0 || o.AbortRatio > 1:
		return bad("abort ratio %v is outside 0..1", o.AbortRatio)
	case o.SKUs < 1 || o.SKUs > 1000:
		return bad("SKUs %d is outside 1..1000", o.SKUs)
	case o.TimeoutMS < 0:
		return bad("timeout %d ms is negative", o.TimeoutMS)
	case o.ServiceProcs > 1024:
		return bad("service GOMAXPROCS %d is above 1024", o.ServiceProcs)
	case o.StartTimeout < 0 || o.ProgressEvery < 0 || o.SampleEvery < 0:
		return bad("start timeout, progress and sample intervals must not be negative")
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("bad URL %q: %v", s, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("URL %q: want http://host:port", s)
	}
	return nil
}
