package faultproxy

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"
)

// ErrBadOptions is returned by New for options that cannot work.
var ErrBadOptions = errors.New("bad proxy options")

// ErrBadFaults is returned by SetFaults for faults out of range.
var ErrBadFaults = errors.New("bad faults")

// Options configures a Proxy.
type Options struct {
	// Listen is the loopback address to listen on; default "127.0.0.1:0"
	// (a free port).
	Listen string
	// Upstream is the base URL requests are forwarded to, e.g.
	// "http://127.0.0.1:7071". Required; must be a loopback address.
	Upstream string
	// MaxBody bounds request and response bodies; default 16 MiB. A larger
	// one resets the connection.
	MaxBody int64
	// Timeout bounds one upstream exchange; default 30 s.
	Timeout time.Duration
	// Seed drives every random fault decision.
	Seed uint64
}

func (o *Options) validate() (*url.URL, error) {
	if o.Listen == "" {
		o.Listen = "127.0.0.1:0"
	}
	if o.MaxBody == 0 {
		o.MaxBody = 16 << 20
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.MaxBody < 0 || o.Timeout < 0 {
		return nil, fmt.Errorf("%w: MaxBody and Timeout must not be negative", ErrBadOptions)
	}
	if err := requireLoopback(o.Listen); err != nil {
		return nil, fmt.Errorf("%w: listen: %w", ErrBadOptions, err)
	}
	u, err := url.Parse(o.Upstream)
	if err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("%w: upstream %q is not a base URL like http://127.0.0.1:7071", ErrBadOptions, o.Upstream)
	}
	if err := requireLoopback(u.Host); err != nil {
		return nil, fmt.Errorf("%w: upstream: %w", ErrBadOptions, err)
	}
	return u, nil
}

func requireLoopback(hostport string) error {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		return fmt.Errorf("%q: %w", hostport, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%q is not a loopback address", hostport)
	}
	return nil
}

// Faults is what the proxy does to the requests it forwards. The zero value
// forwards everything untouched. Probabilities are in [0, 1] and are drawn
// per request.
type Faults struct {
	// Partitioned drops every request: the connection is held without an
	// answer until the partition heals (or the proxy closes), then reset.
	// A request already forwarded when the partition starts loses its answer.
	Partitioned bool
	// DelayMin and DelayMax delay each request by a random duration in
	// [DelayMin, DelayMax] before it is forwarded.
	DelayMin, DelayMax time.Duration
	// Duplicate is the probability that a forwarded request is sent to the
	// upstream a second time, up to ReplayDelayMax later; the client gets
	// the first answer and never sees the second.
	Duplicate      float64
	ReplayDelayMax time.Duration
	// ResetBefore is the probability that a request is lost: the client's
	// connection is reset and nothing is forwarded.
	ResetBefore float64
	// ResetAfter is the probability that an answer is lost: the request is
	// forwarded, then the client's connection is reset instead of answered.
	ResetAfter float64
}

func (f Faults) validate() error {
	for _, p := range []struct {
		name string
		v    float64
	}{{"Duplicate", f.Duplicate}, {"ResetBefore", f.ResetBefore}, {"ResetAfter", f.ResetAfter}} {
		if !(p.v >= 0 && p.v <= 1) {
			return fmt.Errorf("%w: %s = %v, want a probability in [0, 1]", ErrBadFaults, p.name, p.v)
		}
	}
	if f.DelayMin < 0 || f.DelayMax < f.DelayMin || f.ReplayDelayMax < 0 {
		return fmt.Errorf("%w: delays must satisfy 0 <= DelayMin <= DelayMax and ReplayDelayMax >= 0", ErrBadFaults)
	}
	return nil
}

// String describes f in a few words, for progress lines.
func (f Faults) String() string {
	if f == (Faults{}) {
		return "healthy"
	}
	s := ""
	add := func(part string) {
		if s != "" {
			s += ", "
		}
		s += part
	}
	if f.Partitioned {
		add("partitioned")
	}
	if f.DelayMax > 0 {
		add(fmt.Sprintf("delay %v-%v", f.DelayMin, f.DelayMax))
	}
	if f.Duplicate > 0 {
		add(fmt.Sprintf("duplicate %.0f%%", f.Duplicate*100))
	}
	if f.ResetBefore > 0 {
		add(fmt.Sprintf("lose requests %.0f%%", f.ResetBefore*100))
	}
	if f.ResetAfter > 0 {
		add(fmt.Sprintf("lose answers %.0f%%", f.ResetAfter*100))
	}
	return s
}

// Stats counts what the proxy did.
type Stats struct {
	Requests       uint64 `json:"requests"`        // requests read from clients
	Forwarded      uint64 `json:"forwarded"`       // requests answered by the upstream (duplicates excluded)
	Dropped        uint64 `json:"dropped"`         // requests held and dropped by a partition
	Delayed        uint64 `json:"delayed"`         // requests delayed
	Duplicated     uint64 `json:"duplicated"`      // second copies sent to the upstream
	ResetsBefore   uint64 `json:"resets_before"`   // requests lost by a reset
	ResetsAfter    uint64 `json:"resets_after"`    // answers lost by a reset
	UpstreamErrors uint64 `json:"upstream_errors"` // exchanges the upstream failed (answered by a reset)
}
