package etcdlog

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/wal"
)

// TestGapNeverReplayed: with several chunk Txns in flight, a later chunk
// lands while an earlier one is held back, and then the shard is taken
// over, which fences the earlier one for good. The later chunk's record is
// never acknowledged (acknowledgements go in order), never replayed, and
// the next owner deletes its chunk before writing where it was.
func TestGapNeverReplayed(t *testing.T) {
	cli := newClient(t)
	a := newSession(t, cli, "a", 10*time.Second)
	name := newClusterName(t)
	claimA := mustClaim(t, a, name, 0)

	hold := make(chan struct{}) // the Txn of chunk 2 waits for it
	held := make(chan struct{}) // chunk 2's Txn is about to be sent
	landed := make(chan uint64, 8)
	var once, release sync.Once
	releaseHold := func() { release.Do(func() { close(hold) }) }
	l := mustOpenLog(t, Options{
		Claim:       claimA,
		MaxInFlight: 4,
		beforeTxn: func(first uint64) {
			if first == 2 {
				once.Do(func() { close(held) })
				<-hold
			}
		},
		afterTxn: func(first uint64) { landed <- first },
	})
	defer func() {
		releaseHold() // else Close waits for chunk 2 for ever
		l.Close()
	}()
	if _, err := l.Append(1, []byte("one")); err != nil {
		t.Fatal(err)
	}
	<-landed
	if _, err := l.AppendAsync(1, []byte("two")); err != nil {
		t.Fatal(err)
	}
	<-held // chunk 2 is in flight: the next record goes in a chunk of its own
	res := make(chan error, 1)
	go func() {
		_, err := l.Append(1, []byte("three"))
		res <- err
	}()
	if got := <-landed; got != 3 {
		t.Fatalf("chunk %d landed, want 3", got)
	}
	if got := l.DurableSeq(); got != 1 {
		t.Fatalf("DurableSeq %d once chunk 3 landed and chunk 2 not, want 1", got)
	}
	select {
	case err := <-res:
		t.Fatalf("Append of record 3 returned (%v) while record 2 is not in etcd", err)
	default:
	}
	keys := claimA.Keys()
	if n := chunkCount(t, cli, keys); n != 2 {
		t.Fatalf("%d chunks in etcd, want 2 (1 and 3)", n)
	}

	// The process is taken for dead: its owner key goes, b claims.
	if _, err := cli.Delete(context.Background(), keys.Owner); err != nil {
		t.Fatal(err)
	}
	b := newSession(t, cli, "b", 10*time.Second)
	claimB := mustClaim(t, b, name, 0)
	releaseHold() // chunk 2's Txn goes out now, under the old claim
	if err := <-res; !errors.Is(err, declog.ErrFenced) {
		t.Fatalf("Append of record 3: %v, want ErrFenced", err)
	}
	if n := chunkCount(t, cli, keys); n != 2 {
		t.Fatalf("%d chunks in etcd after the fenced Txn, want 2", n)
	}

	nl := mustOpenLog(t, Options{Claim: claimB})
	defer nl.Close()
	if got := nl.stats.gapChunks.Load(); got != 1 {
		t.Fatalf("%d chunks deleted after the gap, want 1", got)
	}
	if n := chunkCount(t, cli, keys); n != 1 {
		t.Fatalf("%d chunks in etcd once b opened the log, want 1", n)
	}
	if got := nl.LastSeq(); got != 1 {
		t.Fatalf("b's LastSeq %d, want 1", got)
	}
	seq, err := nl.Append(2, []byte("b's"))
	if err != nil || seq != 2 {
		t.Fatalf("b's append: seq %d, %v; want 2", seq, err)
	}
	var got []string
	if err := nl.Replay(1, func(r wal.Record) error {
		got = append(got, string(r.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0] != "one" || got[1] != "b's" {
		t.Fatalf("replayed %q, want [one b's]", got)
	}
}

// TestGapAtStartCleaned: a log whose first chunk never landed, though a
// later one did (planted here as the former owner's Txn would have put
// it), opens empty and deletes that chunk.
func TestGapAtStartCleaned(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli, "a", 10*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim})
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	keys := claim.Keys()
	if _, err := cli.Put(context.Background(), keys.chunkKey(3), string(appendFrame(nil, 3, 1, []byte("after a gap")))); err != nil {
		t.Fatal(err)
	}
	l = mustOpenLog(t, Options{Claim: claim})
	defer l.Close()
	if n := chunkCount(t, cli, keys); n != 0 {
		t.Fatalf("%d chunks left, want 0", n)
	}
	n := 0
	if err := l.Replay(1, func(wal.Record) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 || l.LastSeq() != 0 {
		t.Fatalf("replayed %d records, LastSeq %d; want none", n, l.LastSeq())
	}
}

// TestPipelineAcksInOrder: 32 appenders on a log with 8 Txns in flight;
// when an Append returns, DurableSeq has reached its record, and at the
// end the chunks in etcd follow each other without a gap up to the last
// record acknowledged.
func TestPipelineAcksInOrder(t *testing.T) {
	cli := newClient(t)
	s := newSession(t, cli, "a", 10*time.Second)
	claim := mustClaim(t, s, newClusterName(t), 0)
	l := mustOpenLog(t, Options{Claim: claim, MaxInFlight: 8})
	defer l.Close()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var maxAcked uint64
	for w := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				seq, err := l.Append(1, []byte{byte(w), byte(i)})
				if err != nil {
					t.Error(err)
					return
				}
				if d := l.DurableSeq(); d < seq {
					t.Errorf("record %d acknowledged with DurableSeq %d", seq, d)
				}
				mu.Lock()
				maxAcked = max(maxAcked, seq)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	st := l.Stats()
	if st.Appends != 640 {
		t.Fatalf("%d appends, want 640", st.Appends)
	}
	resp, err := cli.Get(context.Background(), claim.Keys().Log, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	next := uint64(1)
	for _, kv := range resp.Kvs {
		first, err := claim.Keys().parseChunkKey(string(kv.Key))
		if err != nil || first != next {
			t.Fatalf("chunk %s: want first record %d (%v)", kv.Key, next, err)
		}
		if next, err = decodeChunk(string(kv.Key), kv.Value, first, DefaultMaxChunkBytes, nil); err != nil {
			t.Fatal(err)
		}
	}
	if next != maxAcked+1 {
		t.Fatalf("chunks end at %d, want %d", next-1, maxAcked)
	}
}

func chunkCount(t *testing.T, cli *clientv3.Client, k Keys) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cli.Get(ctx, k.Log, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Count
}
