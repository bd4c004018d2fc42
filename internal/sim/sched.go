package sim

import (
	"container/heap"
	"time"
)

// epoch is the simulated clock's origin. A fixed instant keeps runs
// reproducible; it has no meaning of its own.
var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// event is one thing that happens at a simulated instant. Events at the same
// instant run in the order they were scheduled, so a run depends only on its
// seed.
type event struct {
	at  time.Time
	seq uint64
	fn  func()
}

type eventHeap []*event

func (h eventHeap) Len() int { return len(h) }
func (h eventHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h eventHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *eventHeap) Push(x any)   { *h = append(*h, x.(*event)) }
func (h *eventHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}

// scheduler is the simulated clock and its queue of pending events. Time
// moves only when the next event is taken.
type scheduler struct {
	now    time.Time
	seq    uint64
	queue  eventHeap
	events int // events run so far
}

func newScheduler() *scheduler { return &scheduler{now: epoch} }

// at schedules fn to run at instant t (never earlier than now).
func (s *scheduler) at(t time.Time, fn func()) {
	if t.Before(s.now) {
		t = s.now
	}
	s.seq++
	heap.Push(&s.queue, &event{at: t, seq: s.seq, fn: fn})
}

// after schedules fn to run d from now.
func (s *scheduler) after(d time.Duration, fn func()) { s.at(s.now.Add(d), fn) }

// step runs the next event no later than limit. It reports false when there
// is none.
func (s *scheduler) step(limit time.Time) bool {
	if len(s.queue) == 0 || s.queue[0].at.After(limit) {
		return false
	}
	e := heap.Pop(&s.queue).(*event)
	s.now = e.at
	s.events++
	e.fn()
	return true
}

// elapsed is the simulated time since the run began.
func (s *scheduler) elapsed() time.Duration { return s.now.Sub(epoch) }
