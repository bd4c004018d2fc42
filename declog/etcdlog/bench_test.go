package etcdlog

import (
	"sort"
	"sync"
	"testing"
	"time"
)

// BenchmarkGroupCommit64: 64 appenders at once, each Append of a 100-byte
// record waiting for its chunk's fenced Txn, on the 3-member loopback
// cluster. Reports records/s, Txn/s and records per Txn.
func BenchmarkGroupCommit64(b *testing.B) { benchGroupCommit(b, 1, 0) }

// BenchmarkGroupCommit64InFlight8 is BenchmarkGroupCommit64 with up to 8
// chunk Txns in flight (pipelining), for comparison in one run.
func BenchmarkGroupCommit64InFlight8(b *testing.B) { benchGroupCommit(b, 1, 8) }

// BenchmarkGroupCommit64InFlight2: two in flight.
func BenchmarkGroupCommit64InFlight2(b *testing.B) { benchGroupCommit(b, 1, 2) }

// BenchmarkGroupCommit64InFlight4: four in flight.
func BenchmarkGroupCommit64InFlight4(b *testing.B) { benchGroupCommit(b, 1, 4) }

// BenchmarkGroupCommit64Shards8 is BenchmarkGroupCommit64 with the 64
// appenders spread over the logs of 8 shards (of one session), 8 each.
func BenchmarkGroupCommit64Shards8(b *testing.B) { benchGroupCommit(b, 8, 0) }

func benchGroupCommit(b *testing.B, shards, inFlight int) {
	cli := newClient(b)
	s := newSession(b, cli, "bench", 30*time.Second)
	name := newClusterName(b)
	var logs []*Log
	for i := range shards {
		l := mustOpenLog(b, Options{Claim: mustClaim(b, s, name, i), MaxInFlight: inFlight})
		defer l.Close()
		logs = append(logs, l)
	}
	payload := make([]byte, 100)
	const writers = 64
	var wg sync.WaitGroup
	work := make(chan struct{}, writers)
	stats := func() (recs, txns int64) {
		for _, l := range logs {
			st := l.Stats()
			recs += st.Appends
			txns += st.Syncs
		}
		return recs, txns
	}
	recs0, txns0 := stats()
	b.ResetTimer()
	start := time.Now()
	for w := range writers {
		l := logs[w%shards]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				if _, err := l.Append(1, payload); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	recs, txns := stats()
	recs, txns = recs-recs0, txns-txns0
	b.ReportMetric(float64(recs)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(txns)/elapsed.Seconds(), "txn/s")
	b.ReportMetric(float64(recs)/float64(txns), "records/txn")
}

// BenchmarkSequentialAppend: one appender, each Append of a 100-byte record
// its own fenced Txn. Reports the median and 99th percentile latency.
func BenchmarkSequentialAppend(b *testing.B) {
	cli := newClient(b)
	s := newSession(b, cli, "bench", 30*time.Second)
	l := mustOpenLog(b, Options{Claim: mustClaim(b, s, newClusterName(b), 0)})
	defer l.Close()
	payload := make([]byte, 100)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := l.Append(1, payload); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}
