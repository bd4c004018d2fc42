package etcdlog

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord/wal"
)

// TestCompactWhileAppending: compactions of everything written so far,
// one after another, while 8 appenders append: no compaction deletes a
// chunk written while it was under way, so every acknowledged record at or
// after the last compaction's bound is in the log, without a gap.
func TestCompactWhileAppending(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli, "a", 10*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim})
	var ack acked
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan error, 9)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := []byte(fmt.Sprintf("w%d-%d", w, i))
				seq, err := l.Append(1, p)
				if err == nil {
					err = ack.add(seq, p)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	var before uint64
	compactions := 0
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); {
		for l.DurableSeq()+1 == before && time.Now().Before(end) {
			time.Sleep(time.Millisecond) // poll for a new chunk
		}
		before = l.DurableSeq() + 1
		if err := l.Compact(before); err != nil {
			t.Fatal(err)
		}
		compactions++
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = mustOpenLog(t, Options{Claim: claim})
	defer l.Close()
	got := map[uint64][]byte{}
	next := uint64(0)
	if err := l.Replay(before, func(r wal.Record) error {
		if next != 0 && r.Seq != next {
			return fmt.Errorf("record %d follows %d", r.Seq, next-1)
		}
		next = r.Seq + 1
		got[r.Seq] = r.Payload
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	ack.mu.Lock()
	defer ack.mu.Unlock()
	kept := 0
	for seq, p := range ack.recs {
		if seq < before {
			continue
		}
		kept++
		if !bytes.Equal(got[seq], p) {
			t.Fatalf("acknowledged record %d at or after the compaction bound %d is gone", seq, before)
		}
	}
	t.Logf("%d compactions; %d records acknowledged, %d at or after the last bound %d; log from %d", compactions, len(ack.recs), kept, before, l.FirstSeq())
	if compactions < 10 || len(ack.recs) < 100 {
		t.Fatalf("too little happened to show anything: %d compactions, %d records", compactions, len(ack.recs))
	}
}
