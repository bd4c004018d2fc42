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
func BenchmarkGroupCommit64(b *testing.B) {
	cli := newClient(b)
	s := newSession(b, cli, "bench", 30*time.Second)
	l := mustOpenLog(b, Options{Claim: mustClaim(b, s, newClusterName(b), 0)})
	defer l.Close()
	payload := make([]byte, 100)
	const writers = 64
	var wg sync.WaitGroup
	work := make(chan struct{}, writers)
	st0 := l.Stats()
	b.ResetTimer()
	start := time.Now()
	for range writers {
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
	st := l.Stats()
	txns := st.Syncs - st0.Syncs
	recs := st.Appends - st0.Appends
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
