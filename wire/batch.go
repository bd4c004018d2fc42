package wire

import "sync"

// Batcher gathers items bound for one destination (for example the PREPAREs
// for one participant) into batches. An item added while fewer than
// maxInFlight sends are running is sent at once, alone, so batching adds no
// latency at low load; items added while every send slot is busy wait in a
// queue and leave together, up to maxBatch at a time, as soon as a slot frees.
// It is safe for concurrent use.
type Batcher[T any] struct {
	send        func([]T)
	maxBatch    int
	maxInFlight int

	mu       sync.Mutex
	queue    []T
	hint     int   // length of the last batch taken: the next queue starts at that capacity
	spares   [][]T // slices of sent batches, emptied, for the next queues
	inflight int
	closed   bool
	idle     *sync.Cond // signalled when inflight drops to zero
}

// NewBatcher returns a Batcher that calls send (from its own goroutines, at
// most maxInFlight at once) with batches of at most maxBatch items. Values
// below 1 are taken as 1. send must not keep the batch it is given once it
// returns: the slice is reused for a later batch.
func NewBatcher[T any](maxBatch, maxInFlight int, send func([]T)) *Batcher[T] {
	b := &Batcher[T]{send: send, maxBatch: max(1, maxBatch), maxInFlight: max(1, maxInFlight)}
	b.idle = sync.NewCond(&b.mu)
	return b
}

// sliceLocked returns an empty slice with room for n items: a sent batch's
// when one is big enough.
func (b *Batcher[T]) sliceLocked(n int) []T {
	for i := len(b.spares) - 1; i >= 0; i-- {
		if s := b.spares[i]; cap(s) >= n {
			last := len(b.spares) - 1
			b.spares[i] = b.spares[last]
			b.spares[last] = nil
			b.spares = b.spares[:last]
			return s
		}
	}
	return make([]T, 0, n)
}

// recycleLocked keeps the slice of a sent batch for a later one, unless
// maxInFlight are kept already or it is far larger than a batch.
func (b *Batcher[T]) recycleLocked(batch []T) {
	if len(b.spares) >= b.maxInFlight || cap(batch) > 2*b.maxBatch {
		return
	}
	clear(batch) // the items are not kept alive by a spare
	b.spares = append(b.spares, batch[:0])
}

// Add queues items and starts a send if a slot is free. It reports false, and
// drops the items, once Close has been called.
func (b *Batcher[T]) Add(items ...T) bool {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return false
	}
	if b.queue == nil {
		// Room for about the size the batch will reach, rather than a
		// doubling chain of allocations.
		b.queue = b.sliceLocked(max(len(items), b.hint))
	}
	b.queue = append(b.queue, items...)
	if b.inflight >= b.maxInFlight {
		b.mu.Unlock()
		return true
	}
	b.inflight++
	batch := b.takeLocked()
	b.mu.Unlock()
	go b.run(batch)
	return true
}

// takeLocked removes up to maxBatch items from the front of the queue.
func (b *Batcher[T]) takeLocked() []T {
	b.hint = min(len(b.queue), b.maxBatch)
	if len(b.queue) <= b.maxBatch {
		batch := b.queue
		b.queue = nil
		return batch
	}
	batch := append(b.sliceLocked(b.maxBatch), b.queue[:b.maxBatch]...)
	rest := copy(b.queue, b.queue[b.maxBatch:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	return batch
}

func (b *Batcher[T]) run(batch []T) {
	for {
		b.send(batch)
		b.mu.Lock()
		b.recycleLocked(batch)
		if len(b.queue) == 0 || b.closed {
			b.inflight--
			if b.inflight == 0 {
				b.idle.Broadcast()
			}
			b.mu.Unlock()
			return
		}
		batch = b.takeLocked()
		b.mu.Unlock()
	}
}

// Len reports how many items wait for a free slot.
func (b *Batcher[T]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.queue)
}

// Drain waits until every queued item has been sent and no send is running.
// Items added meanwhile are waited for too.
func (b *Batcher[T]) Drain() {
	b.mu.Lock()
	for b.inflight > 0 {
		b.idle.Wait()
	}
	b.mu.Unlock()
}

// Close drops the queued items, refuses new ones and waits until every running
// send has returned. It returns the dropped items.
func (b *Batcher[T]) Close() []T {
	b.mu.Lock()
	b.closed = true
	dropped := b.queue
	b.queue = nil
	for b.inflight > 0 {
		b.idle.Wait()
	}
	b.mu.Unlock()
	return dropped
}
