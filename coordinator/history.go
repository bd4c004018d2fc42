package coordinator

import (
	"context"
	"hash/maphash"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// Every transaction keeps a bounded history of what happened to it (sent,
// voted, decided, retried, acknowledged), for the console's timeline. A live
// transaction holds it in its txState, appended under its mutex: one
// allocation per transaction, none per message (an event refers to strings
// that exist anyway). A finished transaction's history moves to a bounded
// store, so that the newest KeepTimelines finished timelines stay readable.

// eventKind names one kind of event in a transaction's history.
type eventKind uint8

const (
	evSubmitted eventKind = iota + 1
	evRecovered
	evPrepareSent
	evVote
	evDecision
	evCommitSent
	evAbortSent
	evDeliveryFailed
	evAck
	evResolved
	evEnd
	evOperatorRetry
	evOperatorAbort
)

var eventNames = [...]string{
	evSubmitted: "submitted", evRecovered: "recovered", evPrepareSent: "prepare-sent", evVote: "vote",
	evDecision: "decision", evCommitSent: "commit-sent", evAbortSent: "abort-sent",
	evDeliveryFailed: "delivery-failed", evAck: "acknowledged", evResolved: "resolved", evEnd: "end",
	evOperatorRetry: "operator-retry", evOperatorAbort: "operator-abort",
}

func (k eventKind) String() string {
	if int(k) < len(eventNames) && eventNames[k] != "" {
		return eventNames[k]
	}
	return "unknown"
}

// event is one entry of a history. value is a vote or an outcome; detail
// a reason or error the driver already holds. 48 bytes.
type event struct {
	at          int64 // Unix nanoseconds
	kind        eventKind
	value       eventValue
	participant string
	detail      string
}

// eventValue is an event's vote or outcome, or none, held as numbers
// rather than as its name: the name is only needed when a timeline is read.
type eventValue struct {
	of   uint8 // valueNone, valueVote or valueOutcome
	code uint8 // the concord.Vote or concord.Outcome
}

const (
	valueNone = iota
	valueVote
	valueOutcome
)

func voteValue(v concord.Vote) eventValue       { return eventValue{valueVote, uint8(v)} }
func outcomeValue(o concord.Outcome) eventValue { return eventValue{valueOutcome, uint8(o)} }

var noValue eventValue

func (v eventValue) String() string {
	switch v.of {
	case valueVote:
		return concord.Vote(v.code).String()
	case valueOutcome:
		return concord.Outcome(v.code).String()
	}
	return ""
}

// Bounds of one transaction's history: past maxEvents, the events after the
// first keepFirst are dropped oldest first, so that a commit retried for
// hours keeps how it started and how it is going.
const (
	// historyCap events are allocated up front: a 3-participant commit
	// needs 15 (4 per participant and 3). 15 events and the 8-byte header
	// the runtime puts before an object of more than 512 bytes with
	// pointers take 728 bytes, in the 768-byte size class; 16 would take
	// the 896-byte one.
	historyCap = 15
	maxEvents  = 64
	keepFirst  = 16
)

// history is a transaction's events; guarded by its txState's mu.
type history struct {
	events  []event
	dropped int
}

func (h *history) add(e event) {
	if h.events == nil {
		h.events = make([]event, 0, historyCap)
	}
	if len(h.events) >= maxEvents {
		copy(h.events[keepFirst:], h.events[keepFirst+1:])
		h.events = h.events[:len(h.events)-1]
		h.dropped++
	}
	h.events = append(h.events, e)
}

// wire renders the history, numbering each participant's sends.
func (h *history) wire() ([]wire.TxEvent, int) {
	out := make([]wire.TxEvent, len(h.events))
	sends := map[[2]string]int{}
	for i, e := range h.events {
		out[i] = wire.TxEvent{At: time.Unix(0, e.at).UTC(), Kind: e.kind.String(), Participant: e.participant,
			Value: e.value.String(), Detail: e.detail}
		switch e.kind {
		case evPrepareSent, evCommitSent, evAbortSent:
			k := [2]string{e.kind.String(), e.participant}
			sends[k]++
			out[i].Attempt = sends[k]
		}
	}
	return out, h.dropped
}

// noteLocked records an event of t at now. t.mu must be held.
func (t *txState) noteLocked(now time.Time, kind eventKind, participant string, value eventValue, detail string) {
	t.hist.add(event{at: now.UnixNano(), kind: kind, participant: participant, value: value, detail: detail})
}

// noteReadyLocked records what performing rd did: the decision logged (or
// reported without a record of its own: a one-phase answer, all read-only),
// each message handed to a sender, and END. t.mu must be held.
func (t *txState) noteReadyLocked(now time.Time, rd tpc.Ready) {
	decided, ended := false, false
	for _, r := range rd.Records {
		switch r.Type {
		case tpc.RecCommit:
			decided = true
			t.noteLocked(now, evDecision, "", outcomeValue(concord.OutcomeCommitted), "commit decision durable (synced to the log)")
		case tpc.RecAbort:
			decided = true
			t.noteLocked(now, evDecision, "", outcomeValue(concord.OutcomeAborted), r.Reason)
		case tpc.RecEnd:
			ended = true
		}
	}
	if !decided && rd.Outcome != concord.OutcomePending {
		detail := rd.Reason
		if detail == "" {
			detail = "decided without a decision record: the lone participant's one-phase answer, or every vote read-only"
		}
		t.noteLocked(now, evDecision, "", outcomeValue(rd.Outcome), detail)
	}
	for _, m := range rd.Messages {
		switch m.Kind {
		case tpc.MsgPrepare:
			detail := ""
			if m.OnePhase {
				detail = "one-phase: the participant decides alone"
			}
			t.noteLocked(now, evPrepareSent, m.To, noValue, detail)
		case tpc.MsgCommit:
			t.noteLocked(now, evCommitSent, m.To, noValue, "")
		case tpc.MsgAbort:
			t.noteLocked(now, evAbortSent, m.To, noValue, "")
		}
	}
	if ended {
		t.noteLocked(now, evEnd, "", noValue, "every participant has the outcome; the coordinator forgets the transaction")
	}
}

// timelines keeps the histories of finished transactions, the newest
// KeepTimelines of them, in shards each with its own lock.
type timelines struct {
	seed     maphash.Seed
	perShard int
	shards   [numShards]timelineShard
}

type timelineShard struct {
	mu   sync.Mutex
	m    map[concord.TxID]*finishedTimeline
	ring []concord.TxID
	head int
}

type finishedTimeline struct {
	hist        history
	traceparent string
}

func newTimelines(keep int) *timelines {
	t := &timelines{seed: maphash.MakeSeed(), perShard: max(1, (keep+numShards-1)/numShards)}
	for i := range t.shards {
		t.shards[i].m = make(map[concord.TxID]*finishedTimeline)
	}
	return t
}

func (t *timelines) shard(id concord.TxID) *timelineShard {
	return &t.shards[maphash.String(t.seed, string(id))%numShards]
}

// keep stores the history of a finished transaction, evicting the oldest
// of its shard when full.
func (t *timelines) keep(id concord.TxID, f *finishedTimeline) {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[id]; ok {
		s.m[id] = f
		return
	}
	if len(s.ring) < t.perShard {
		s.ring = append(s.ring, id)
	} else {
		delete(s.m, s.ring[s.head])
		s.ring[s.head] = id
		s.head = (s.head + 1) % t.perShard
	}
	s.m[id] = f
}

func (t *timelines) get(id concord.TxID) *finishedTimeline {
	s := t.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// Timeline returns transaction id's state and event history, or
// ErrNotFound. The history of a finished transaction is kept for the newest
// Options.KeepTimelines of them; an older one answers with its state and no
// events.
func (c *Coordinator) Timeline(id concord.TxID) (wire.TxTimeline, error) {
	return c.timeline(context.Background(), id)
}

// timeline is Timeline for the caller in ctx: ErrForbidden for another
// client's transaction, checked on each object read.
func (c *Coordinator) timeline(ctx context.Context, id concord.TxID) (wire.TxTimeline, error) {
	st, err := c.status(ctx, id)
	if err != nil {
		return wire.TxTimeline{}, err
	}
	var tl wire.TxTimeline
	if t := c.table.live(id); t != nil {
		t.mu.Lock()
		if err := c.authorize(ctx, id, t.owner); err != nil {
			t.mu.Unlock()
			return wire.TxTimeline{}, err
		}
		tl.Events, tl.Dropped = t.hist.wire()
		tl.Traceparent = t.traceparent
		t.mu.Unlock()
	} else if f := c.timelines.get(id); f != nil {
		tl.Events, tl.Dropped = f.hist.wire()
		tl.Traceparent = f.traceparent
	}
	if tl.Events == nil {
		tl.Events = []wire.TxEvent{}
	}
	tl.Status = st
	return tl, nil
}
