package participant

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/concordtx/concord"
)

// CoordinatorRef names the coordinator that decides a transaction: the one a
// participant in doubt about it asks, even after a restart with another
// Options.Coordinator. A resource keeps it, durably, with every prepared
// transaction. It is a struct so that it can grow (a cluster's addresses).
type CoordinatorRef struct {
	// URLs are the coordinator's base URLs, asked in order; today one.
	URLs []string `json:"urls,omitempty"`
	// Identity is the identity (security.Identity) the coordinator's TLS
	// certificate named when it sent the PREPARE (the Server's
	// Options.CoordinatorIdentity then); empty without TLS. A Server asks
	// about the transaction only while it trusts that same identity.
	Identity string `json:"identity,omitempty"`
}

// IsZero reports whether c names no coordinator.
func (c CoordinatorRef) IsZero() bool { return len(c.URLs) == 0 && c.Identity == "" }

// Equal reports whether c and d name the same coordinator.
func (c CoordinatorRef) Equal(d CoordinatorRef) bool {
	if c.Identity != d.Identity || len(c.URLs) != len(d.URLs) {
		return false
	}
	for i := range c.URLs {
		if c.URLs[i] != d.URLs[i] {
			return false
		}
	}
	return true
}

// Encode returns c's stored form, JSON: what a resource writes beside a
// prepared transaction. The zero value encodes as nothing.
func (c CoordinatorRef) Encode() []byte {
	if c.IsZero() {
		return nil
	}
	b, _ := json.Marshal(c) // strings only: cannot fail
	return b
}

// DecodeCoordinatorRef reads what Encode wrote; empty input is the zero
// value. Fields it does not know are ignored, so that an older version
// reads what a newer one wrote.
func DecodeCoordinatorRef(b []byte) (CoordinatorRef, error) {
	var c CoordinatorRef
	if len(b) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return CoordinatorRef{}, fmt.Errorf("coordinator reference %q: %w", b, err)
	}
	return c, nil
}

// PrepareInfo is what a PREPARE says about its transaction beside the work.
type PrepareInfo struct {
	// Deadline is the transaction's deadline by the coordinator's clock.
	// Zero means the PREPARE gave none (a coordinator older than the
	// field); Retention.Admit then gives it one.
	Deadline time.Time
	// Coordinator is who decides the transaction; a resource keeps it with
	// a yes vote and returns it from Recover.
	Coordinator CoordinatorRef
}

// RecoveredTx is a prepared, undecided transaction listed by
// Resource.Recover, with the coordinator its PREPARE named.
type RecoveredTx struct {
	ID          concord.TxID
	Coordinator CoordinatorRef
}

// Retention is the time rule by which a resource remembers decisions. A
// PREPARE can be in flight until its transaction's deadline; a resource
// refuses (votes no, remembering nothing) a PREPARE it does not know once
// the deadline has passed by its own clock, so it need remember a decided
// transaction (an abort that came before the PREPARE, a one-phase refusal,
// a commit) only until the deadline plus ClockSkew. Memory is then bounded
// by the rate of transactions times (their timeout + ClockSkew), not by a
// count.
type Retention struct {
	// MaxLifetime bounds how long a PREPARE may still arrive after the
	// ABORT of a transaction this participant never saw prepared, and is
	// the lifetime given to a PREPARE without a deadline: it must be at
	// least the coordinator's maximum transaction timeout (its
	// MaxTimeout). A PREPARE whose deadline is further than MaxLifetime
	// plus ClockSkew ahead is refused (and remembered), since its abort
	// could have been forgotten too early.
	MaxLifetime time.Duration
	// ClockSkew is the allowance for the difference between the
	// coordinator's clock and the resource's, and for steps of either.
	ClockSkew time.Duration
}

// DefaultRetention holds the defaults for Retention's zero fields:
// MaxLifetime is the coordinator's default MaxTimeout.
var DefaultRetention = Retention{MaxLifetime: 60 * time.Second, ClockSkew: time.Minute}

// WithDefaults returns r with zero fields set from DefaultRetention.
func (r Retention) WithDefaults() Retention {
	if r.MaxLifetime == 0 {
		r.MaxLifetime = DefaultRetention.MaxLifetime
	}
	if r.ClockSkew == 0 {
		r.ClockSkew = DefaultRetention.ClockSkew
	}
	return r
}

// Validate reports a negative field.
func (r Retention) Validate() error {
	if r.MaxLifetime < 0 || r.ClockSkew < 0 {
		return fmt.Errorf("retention: MaxLifetime %v and ClockSkew %v must not be negative", r.MaxLifetime, r.ClockSkew)
	}
	return nil
}

// Admission is what Retention.Admit decides for a PREPARE.
type Admission struct {
	// Deadline is the transaction's deadline: the PREPARE's, or for one
	// without, its arrival plus MaxLifetime.
	Deadline time.Time
	// Refuse, when set, is the reason to vote no without doing the work.
	Refuse string
	// Remember says whether the refusal is recorded (until ForgetAt of
	// Deadline) like any no vote; a refusal past the deadline is not.
	Remember bool
}

// Admit decides, at now by the resource's clock, what to do with a PREPARE
// for a transaction the resource holds no record of (it answers one it
// holds from the record, whatever the time).
func (r Retention) Admit(info PrepareInfo, now time.Time) Admission {
	r = r.WithDefaults()
	d := info.Deadline
	if d.IsZero() {
		return Admission{Deadline: now.Add(r.MaxLifetime)}
	}
	if now.After(d) {
		return Admission{Deadline: d, Refuse: fmt.Sprintf("deadline %s passed (now %s)",
			d.UTC().Format(time.RFC3339Nano), now.UTC().Format(time.RFC3339Nano))}
	}
	if d.Sub(now) > r.MaxLifetime+r.ClockSkew {
		return Admission{Deadline: d, Remember: true, Refuse: fmt.Sprintf(
			"deadline %s is %v ahead, more than MaxLifetime %v plus ClockSkew %v: raise MaxLifetime to the coordinator's maximum timeout",
			d.UTC().Format(time.RFC3339Nano), d.Sub(now), r.MaxLifetime, r.ClockSkew)}
	}
	return Admission{Deadline: d}
}

// AbortDeadline is the deadline to keep for the ABORT, at now, of a
// transaction the resource never saw prepared: the latest deadline a
// PREPARE for it can carry (the coordinator began it before it aborted it,
// with a timeout of at most MaxLifetime, by a clock at most ClockSkew
// ahead).
func (r Retention) AbortDeadline(now time.Time) time.Time {
	r = r.WithDefaults()
	return now.Add(r.MaxLifetime + r.ClockSkew)
}

// ForgetAt is when a decided transaction with deadline may be forgotten:
// deadline plus ClockSkew.
func (r Retention) ForgetAt(deadline time.Time) time.Time {
	return deadline.Add(r.WithDefaults().ClockSkew)
}
