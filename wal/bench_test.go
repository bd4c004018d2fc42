package wal_test

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord/wal"
)

// BenchmarkAppend measures durable appends of 128-byte records on the real
// file system with 1 to 256 concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	for _, p := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", p), func(b *testing.B) {
			l, err := wal.Open(wal.Options{Dir: filepath.Join(b.TempDir(), "log")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := make([]byte, 128)
			var next atomic.Int64
			var wg sync.WaitGroup
			before := l.Stats()
			b.ResetTimer()
			for range p {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := l.Append(1, rec); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			st := l.Stats()
			appends := float64(st.Appends - before.Appends)
			b.ReportMetric(appends/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(st.Syncs-before.Syncs)/appends, "fsyncs/append")
		})
	}
}

// BenchmarkFloor is the raw floor one durable append cannot beat: a
// 128-byte write and an fdatasync on a plain file.
func BenchmarkFloor(b *testing.B) {
	f, err := wal.OSFS{}.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	rec := make([]byte, 128)
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(rec); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}
