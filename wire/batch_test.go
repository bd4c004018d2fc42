package wire

import (
	"sync"
	"testing"
)

// A lone item is sent at once, alone: batching adds no wait at low load.
func TestBatcherSendsAtOnceWhenIdle(t *testing.T) {
	got := make(chan []int, 1)
	b := NewBatcher(8, 1, func(batch []int) { got <- append([]int(nil), batch...) })
	defer b.Close()
	b.Add(1)
	if batch := <-got; len(batch) != 1 || batch[0] != 1 {
		t.Fatalf("first send %v, want [1]", batch)
	}
}

// Items that arrive while every slot is busy leave together, bounded by
// maxBatch, and in order.
func TestBatcherBatchesWhileBusy(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	var mu sync.Mutex
	var batches [][]int
	sent := make(chan int, 8)
	b := NewBatcher(3, 1, func(batch []int) {
		mu.Lock()
		batches = append(batches, append([]int(nil), batch...))
		first := len(batches) == 1
		mu.Unlock()
		sent <- len(batch)
		if first {
			started <- struct{}{}
			<-release
		}
	})
	b.Add(0)
	<-started
	for i := 1; i <= 7; i++ {
		b.Add(i)
	}
	if n := b.Len(); n != 7 {
		t.Fatalf("queued %d, want 7 while the slot is busy", n)
	}
	close(release)
	for n := 0; n < 8; n += <-sent {
	}
	b.Close()
	want := [][]int{{0}, {1, 2, 3}, {4, 5, 6}, {7}}
	if len(batches) != len(want) {
		t.Fatalf("batches %v, want %v", batches, want)
	}
	for i := range want {
		if len(batches[i]) != len(want[i]) {
			t.Fatalf("batches %v, want %v", batches, want)
		}
		for j := range want[i] {
			if batches[i][j] != want[i][j] {
				t.Fatalf("batches %v, want %v", batches, want)
			}
		}
	}
}

// At most maxInFlight sends run at once, and every item is sent exactly once.
func TestBatcherBoundsInFlight(t *testing.T) {
	const maxInFlight = 3
	var mu sync.Mutex
	running, peak, total := 0, 0, 0
	seen := map[int]int{}
	b := NewBatcher(4, maxInFlight, func(batch []int) {
		mu.Lock()
		running++
		peak = max(peak, running)
		total += len(batch)
		for _, v := range batch {
			seen[v]++
		}
		mu.Unlock()
		mu.Lock()
		running--
		mu.Unlock()
	})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				b.Add(g*1000 + i)
			}
		}(g)
	}
	wg.Wait()
	b.Drain()
	b.Close()
	if peak > maxInFlight {
		t.Fatalf("%d sends ran at once, bound is %d", peak, maxInFlight)
	}
	if total != 1600 || len(seen) != 1600 {
		t.Fatalf("sent %d items (%d distinct), want 1600", total, len(seen))
	}
}

func TestBatcherRefusesAfterClose(t *testing.T) {
	b := NewBatcher(2, 1, func([]int) {})
	b.Close()
	if b.Add(1) {
		t.Fatal("Add after Close reported success")
	}
}

// The slice of a sent batch is the next batch's: a steady stream of
// batches needs no new slice for each, and a spare keeps no item alive.
func TestBatcherReusesASentBatchSlice(t *testing.T) {
	release := make(chan struct{})
	sent := make(chan **int, 3) // where each batch starts
	var spare []*int
	b := NewBatcher(4, 1, func(batch []*int) {
		sent <- &batch[:1][0]
		<-release
	})
	defer b.Close()
	one, two, three := new(int), new(int), new(int)
	b.Add(one) // sent at once
	first := <-sent
	b.Add(two) // queued while the first is out
	release <- struct{}{}
	second := <-sent // taken once the first send returned
	b.mu.Lock()
	if len(b.spares) == 1 {
		spare = b.spares[0][:1]
	}
	b.mu.Unlock()
	if spare == nil || spare[0] != nil {
		t.Fatalf("after the first send: spare %v, want the first batch's slice, cleared", spare)
	}
	b.Add(three) // a new queue on the first batch's slice
	release <- struct{}{}
	third := <-sent
	close(release)
	if third != first || second == first {
		t.Errorf("batches at %p, %p, %p: want the third on the first's slice", first, second, third)
	}
}
