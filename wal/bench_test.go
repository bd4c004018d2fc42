package wal_test

import (
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord/internal/testutil/cputime"
	"github.com/concordtx/concord/wal"
)

// cpuTime returns the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	d, ok := cputime.Process()
	if !ok {
		b.Skip("the process's CPU time is not known here")
	}
	return d
}

// reportCPU reports the process's CPU time per operation since start.
func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64((cpuTime(b)-start).Microseconds())/float64(b.N), "cpu-us/op")
}

// BenchmarkAppend measures durable appends of 128-byte records on the real
// file system with 1 to 256 concurrent appenders.
func BenchmarkAppend(b *testing.B) {
	benchAppenders(b, func(l *wal.Log, _ *sync.Mutex, rec []byte) error {
		_, err := l.Append(1, rec)
		return err
	})
}

// BenchmarkAppendAsyncSync measures appenders that each append without
// waiting, under a mutex shared with the others, and then sync, as a
// participant's store does for a prepare.
func BenchmarkAppendAsyncSync(b *testing.B) {
	benchAppenders(b, func(l *wal.Log, mu *sync.Mutex, rec []byte) error {
		mu.Lock()
		_, err := l.AppendAsync(1, rec)
		mu.Unlock()
		if err != nil {
			return err
		}
		return l.Sync()
	})
}

// benchAppenders runs b.N calls of appendOne, one 128-byte record each,
// from 1 to 256 concurrent appenders sharing one mutex, and reports CPU,
// appends per second and fsyncs per append.
func benchAppenders(b *testing.B, appendOne func(l *wal.Log, mu *sync.Mutex, rec []byte) error) {
	for _, p := range []int{1, 16, 64, 256} {
		b.Run(fmt.Sprintf("appenders=%d", p), func(b *testing.B) {
			l, err := wal.Open(wal.Options{Dir: filepath.Join(b.TempDir(), "log")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			rec := make([]byte, 128)
			var mu sync.Mutex
			var next atomic.Int64
			var wg sync.WaitGroup
			before := l.Stats()
			b.ResetTimer()
			cpu := cpuTime(b)
			for range p {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if err := appendOne(l, &mu, rec); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportCPU(b, cpu)
			st := l.Stats()
			appends := float64(st.Appends - before.Appends)
			b.ReportMetric(appends/b.Elapsed().Seconds(), "appends/s")
			b.ReportMetric(float64(st.Syncs-before.Syncs)/appends, "fsyncs/append")
		})
	}
}

// BenchmarkAppendAsync measures appends that do not wait for durability;
// the log writes them in the background.
func BenchmarkAppendAsync(b *testing.B) {
	l, err := wal.Open(wal.Options{Dir: filepath.Join(b.TempDir(), "log")})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := make([]byte, 128)
	b.ResetTimer()
	cpu := cpuTime(b)
	for range b.N {
		if _, err := l.AppendAsync(1, rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	reportCPU(b, cpu)
}

// BenchmarkFloor is the raw floor of a durable append to a growing file: a
// 128-byte write at the end of a plain file and an fdatasync, which also
// commits the file's new size.
func BenchmarkFloor(b *testing.B) {
	f, err := wal.OSFS{}.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	benchFloor(b, f)
}

// BenchmarkFloorPrezeroed is the raw floor of a durable write into space
// already allocated and zeroed, as the log writes its records: a 128-byte
// write and an fdatasync on a file first filled with 16 MiB of zeros.
func BenchmarkFloorPrezeroed(b *testing.B) {
	f, err := wal.OSFS{}.Create(filepath.Join(b.TempDir(), "floor"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const size = 16 << 20
	if _, err := f.WriteAt(make([]byte, size), 0); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	if b.N*128 > size {
		b.Fatalf("%d writes of 128 bytes do not fit the %d zeroed bytes", b.N, size)
	}
	benchFloor(b, f)
}

// benchFloor times b.N writes of 128 bytes, one after the other from offset
// 0 of f, each followed by an fdatasync.
func benchFloor(b *testing.B, f wal.File) {
	rec := make([]byte, 128)
	b.ResetTimer()
	cpu := cpuTime(b)
	for i := range b.N {
		if _, err := f.WriteAt(rec, int64(i)*int64(len(rec))); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportCPU(b, cpu)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

// BenchmarkAppendVsFloor alternates one durable Append with one raw
// 128-byte write+fdatasync at the end of a growing file in the same
// directory, so that both see the same disk and load, and reports the
// median of each and of their difference: what the log adds to (or, writing
// into zeros it wrote ahead, saves on) that floor for a lone appender.
func BenchmarkAppendVsFloor(b *testing.B) {
	for _, mode := range []string{"Append", "AppendAsync+Sync"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			l, err := wal.Open(wal.Options{Dir: filepath.Join(dir, "log")})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			f, err := wal.OSFS{}.Create(filepath.Join(dir, "floor"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			rec := make([]byte, 128)
			logT := make([]time.Duration, 0, b.N)
			rawT := make([]time.Duration, 0, b.N)
			diff := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				t0 := time.Now()
				if _, err := f.WriteAt(rec, int64(i)*int64(len(rec))); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				if mode == "Append" {
					_, err = l.Append(1, rec)
				} else if _, err = l.AppendAsync(1, rec); err == nil {
					err = l.Sync()
				}
				if err != nil {
					b.Fatal(err)
				}
				t2 := time.Now()
				rawT = append(rawT, t1.Sub(t0))
				logT = append(logT, t2.Sub(t1))
				diff = append(diff, t2.Sub(t1)-t1.Sub(t0))
			}
			b.StopTimer()
			b.ReportMetric(float64(median(logT).Microseconds()), "log-us")
			b.ReportMetric(float64(median(rawT).Microseconds()), "raw-us")
			b.ReportMetric(float64(median(diff).Microseconds()), "diff-us")
		})
	}
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
