package sim

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/concordtx/concord"
)

// coordinatorName is the coordinator's node name on the simulated network.
const coordinatorName = "coordinator"

// msgKind is the kind of a simulated network message. The messages mirror
// the wire protocol (wire/participant.go, wire/client.go) one transaction at
// a time.
type msgKind uint8

const (
	msgPrepare msgKind = iota + 1 // coordinator -> participant
	msgCommit                     // coordinator -> participant
	msgAbort                      // coordinator -> participant
	msgVote                       // participant -> coordinator: answers a prepare
	msgAck                        // participant -> coordinator: a decision applied
	msgFailure                    // participant -> coordinator: a decision refused
	msgQuery                      // participant -> coordinator: outcome query of a participant in doubt
	msgOutcome                    // coordinator -> participant: answers a query
)

var msgNames = [...]string{"?", "PREPARE", "COMMIT", "ABORT", "VOTE", "ACK", "FAILURE", "QUERY", "OUTCOME"}

func (k msgKind) String() string {
	if int(k) < len(msgNames) {
		return msgNames[k]
	}
	return "msg(?)"
}

// message is one simulated network message.
type message struct {
	kind     msgKind
	from, to string
	tx       concord.TxID
	req      uint64 // the receiver's request number, for a reply
	payload  json.RawMessage
	onePhase bool
	vote     concord.Vote
	outcome  concord.Outcome
	reason   string
}

func (m message) String() string {
	s := fmt.Sprintf("%s %s->%s %s", m.kind, m.from, m.to, m.tx)
	switch m.kind {
	case msgPrepare:
		s += " " + string(m.payload)
		if m.onePhase {
			s += " one-phase"
		}
	case msgVote:
		s += " " + m.vote.String()
		if m.outcome != concord.OutcomePending {
			s += " outcome=" + m.outcome.String()
		}
	case msgFailure, msgOutcome:
		s += " outcome=" + m.outcome.String()
	}
	if m.reason != "" {
		s += fmt.Sprintf(" (%s)", m.reason)
	}
	return s
}

// NetFaults are the simulated network's fault rates. A zero value is a
// perfect network with no delay.
type NetFaults struct {
	Drop      float64       // probability a message is lost
	Duplicate float64       // probability a message is delivered twice
	MinDelay  time.Duration // every message takes at least this long
	MaxDelay  time.Duration // and at most this long, unless slowed
	Slow      float64       // probability a message is held back up to SlowDelay (reordering)
	SlowDelay time.Duration
	// Refuse is the probability that a message sent to a node that is down
	// or cut off fails fast at the sender (a refused connection) instead of
	// vanishing silently (a timeout).
	Refuse float64
}

// network carries messages between nodes with delay, loss, duplication,
// reordering and partitions.
type network struct {
	s      *sim
	faults NetFaults
	cut    map[[2]string]bool // directed links that carry nothing

	sent, delivered, dropped, duplicated int
	inFlight                             int // scheduled deliveries not yet made
}

// send puts m on the wire. failed, if not nil, is called a moment later when
// the sender would notice that the message cannot be delivered (the
// receiver is down or unreachable and the connection is refused).
func (n *network) send(m message, failed func()) {
	n.sent++
	n.s.tracef(m.from, "send %s", m)
	if n.s.onSend != nil {
		n.s.onSend(m)
	}
	if !n.reachable(m.from, m.to) {
		n.dropped++
		n.s.touchTx(m.tx)
		if failed != nil && n.s.rng.Float64() < n.faults.Refuse {
			n.s.sched.after(time.Millisecond, failed)
		}
		return
	}
	if n.s.rng.Float64() < n.faults.Drop {
		n.dropped++
		n.s.touchTx(m.tx)
		n.s.tracef(m.from, "  lost %s", m)
		return
	}
	n.schedule(m)
	if n.s.rng.Float64() < n.faults.Duplicate {
		n.duplicated++
		n.s.tracef(m.from, "  duplicated %s", m)
		n.schedule(m)
	}
}

// schedule delivers m after a random delay. A message held back well past
// the usual delay counts as a fault of its transaction.
func (n *network) schedule(m message) {
	d := n.delay()
	if d > 50*time.Millisecond {
		n.s.touchTx(m.tx)
		n.s.tracef(m.from, "  held back %s: %s", d.Round(time.Millisecond), m)
	}
	n.inFlight++
	n.s.sched.after(d, func() { n.deliver(m) })
}

func (n *network) delay() time.Duration {
	d := n.faults.MinDelay
	if span := n.faults.MaxDelay - n.faults.MinDelay; span > 0 {
		d += time.Duration(n.s.rng.Int64N(int64(span)))
	}
	if n.faults.SlowDelay > 0 && n.s.rng.Float64() < n.faults.Slow {
		d += time.Duration(n.s.rng.Int64N(int64(n.faults.SlowDelay)))
	}
	return d
}

func (n *network) deliver(m message) {
	n.inFlight--
	if !n.reachable(m.from, m.to) {
		n.dropped++
		n.s.touchTx(m.tx)
		n.s.tracef(m.to, "  lost in flight %s", m)
		return
	}
	n.delivered++
	n.s.tracef(m.to, "recv %s", m)
	n.s.node(m.to).receive(m)
}

// reachable reports whether a message from a to b would arrive now.
func (n *network) reachable(a, b string) bool {
	return !n.cut[[2]string{a, b}] && n.s.node(b).up()
}

// heal removes every partition and every fault.
func (n *network) heal() {
	clear(n.cut)
	n.faults.Drop, n.faults.Duplicate, n.faults.Slow = 0, 0, 0
}
