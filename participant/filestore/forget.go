package filestore

import (
	"slices"
	"time"
)

// forgetQueue holds the decided entries by the second after which they may
// be forgotten (participant.Retention.ForgetAt of their deadline, rounded
// up to a whole second, so never early). Deadlines arrive almost in order,
// so an entry is nearly always appended to the last bucket; forgetting
// drops whole buckets from the front. Its memory is the remembered
// entries, bounded by the rate of decisions times (timeout + skew).
type forgetQueue struct {
	buckets []forgetBucket // by sec, ascending, from head on
	head    int
	n       int // entries queued
}

type forgetBucket struct {
	sec     int64 // Unix seconds: forgotten once the clock is past it
	entries []*txEntry
}

// forgetSec is the bucket of an entry that may be forgotten after
// forgetAt: Unix seconds rounded up.
func forgetSec(forgetAt time.Time) int64 {
	sec := forgetAt.Unix()
	if forgetAt.Nanosecond() > 0 {
		sec++
	}
	return sec
}

// add queues e to be forgotten after forgetAt.
func (q *forgetQueue) add(e *txEntry, forgetAt time.Time) {
	sec := forgetSec(forgetAt)
	q.n++
	i := len(q.buckets)
	for i > q.head && q.buckets[i-1].sec > sec {
		i--
	}
	if i > q.head && q.buckets[i-1].sec == sec {
		q.buckets[i-1].entries = append(q.buckets[i-1].entries, e)
		return
	}
	if i == q.head && q.head > 0 {
		// Before every live bucket: reuse the slot in front of them.
		q.head--
		q.buckets[q.head] = forgetBucket{sec: sec, entries: []*txEntry{e}}
		return
	}
	q.buckets = slices.Insert(q.buckets, i, forgetBucket{sec: sec, entries: []*txEntry{e}})
}

// anyDue reports whether the clock at now is past the first bucket.
func (q *forgetQueue) anyDue(now time.Time) bool {
	if q.head == len(q.buckets) {
		return false
	}
	sec := q.buckets[q.head].sec
	return now.Unix() > sec || now.Unix() == sec && now.Nanosecond() > 0
}

// due calls fn for every entry whose bucket the clock at now is past, and
// drops them.
func (q *forgetQueue) due(now time.Time, fn func(e *txEntry)) {
	for q.anyDue(now) {
		b := &q.buckets[q.head]
		for _, e := range b.entries {
			fn(e)
		}
		q.n -= len(b.entries)
		*b = forgetBucket{}
		q.head++
	}
	if q.head == len(q.buckets) {
		q.buckets, q.head = q.buckets[:0], 0
	} else if q.head > 64 && q.head > len(q.buckets)/2 {
		q.buckets = append(q.buckets[:0:0], q.buckets[q.head:]...)
		q.head = 0
	}
}

// each calls fn for every queued entry, soonest forgotten first.
func (q *forgetQueue) each(fn func(e *txEntry)) {
	for _, b := range q.buckets[q.head:] {
		for _, e := range b.entries {
			fn(e)
		}
	}
}
