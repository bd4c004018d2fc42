package coordinator

import (
	"sync"
	"time"

	"github.com/concordtx/concord/wire"
)

// linger holds the COMMITs (or ABORTs) bound for one participant for up to
// delay before handing them to their batcher, so that at low load the
// decisions of several transactions leave in one request instead of one
// request each. Decisions are off the client's path (the client was
// answered once the decision was durable), so the wait costs the client
// nothing; it only keeps the participant's holds and the coordinator's
// table entry a little longer. Under load the batcher queues decisions
// anyway and the wait adds no requests.
type linger struct {
	clock Clock
	delay time.Duration
	max   int // hand over at once when this many are held
	out   *wire.Batcher[*txState]

	mu    sync.Mutex
	held  []*txState
	timer Timer
	gen   uint64 // counts waits started, so a stopped one's late call does nothing
}

func newLinger(clock Clock, delay time.Duration, max int, out *wire.Batcher[*txState]) *linger {
	return &linger{clock: clock, delay: delay, max: max, out: out}
}

// add holds t; the first decision held starts the wait.
func (l *linger) add(t *txState) {
	if l.delay <= 0 {
		l.out.Add(t)
		return
	}
	l.mu.Lock()
	l.held = append(l.held, t)
	if len(l.held) < l.max {
		if l.timer == nil {
			l.gen++
			gen := l.gen
			l.timer = l.clock.AfterFunc(l.delay, func() { l.release(gen) })
		}
		l.mu.Unlock()
		return
	}
	held := l.takeLocked()
	l.mu.Unlock()
	l.out.Add(held...)
}

// release hands over what is held when wait gen ends.
func (l *linger) release(gen uint64) {
	l.mu.Lock()
	if gen != l.gen || l.timer == nil {
		l.mu.Unlock()
		return // stopped: what it held left already
	}
	l.timer = nil
	held := l.held
	l.held = nil
	l.mu.Unlock()
	if len(held) > 0 {
		l.out.Add(held...)
	}
}

// takeLocked empties the hold and stops its timer.
func (l *linger) takeLocked() []*txState {
	held := l.held
	l.held = nil
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	return held
}

// close drops what is held: the decisions are in the log, and the next
// start sends them again.
func (l *linger) close() {
	l.mu.Lock()
	l.takeLocked()
	l.mu.Unlock()
}
