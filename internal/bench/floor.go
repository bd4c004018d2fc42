package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/concordtx/concord/wal"
)

// Floor is the machine's cost of the two things a commit cannot avoid,
// measured in the same run: one durable log append and one loopback HTTP
// round trip (medians).
type Floor struct {
	Fsync     time.Duration `json:"fsync_ns"`
	RoundTrip time.Duration `json:"round_trip_ns"`
	// Commit is the floor of one multi-participant commit answered to a
	// client: two round trips (client to coordinator, coordinator to the
	// participants, in parallel) and two fsyncs in sequence (the
	// participants' prepare, then the coordinator's decision).
	Commit time.Duration `json:"commit_ns"`
	// OnePhase is the floor of a one-participant commit: two round trips
	// and the participant's one fsync.
	OnePhase time.Duration `json:"one_phase_ns"`
	// Fsync3 is the median time of three appends+fdatasyncs to three logs
	// at once, as three participants on one disk prepare; CommitSharedDisk
	// is Commit with it in place of the first fsync: the floor of a
	// three-participant commit when every participant shares this disk.
	Fsync3           time.Duration `json:"fsync3_parallel_ns"`
	CommitSharedDisk time.Duration `json:"commit_shared_disk_ns"`
}

// measureFloor times n appends of 128 bytes with fdatasync to a fresh log
// in dir and n loopback HTTP round trips of a small JSON body.
func measureFloor(ctx context.Context, dir string, n int) (Floor, error) {
	fsync, err := timeFsync(dir, 1, n)
	if err != nil {
		return Floor{}, err
	}
	fsync3, err := timeFsync(dir, 3, n)
	if err != nil {
		return Floor{}, err
	}
	rtt, err := timeRoundTrip(ctx, n)
	if err != nil {
		return Floor{}, err
	}
	return Floor{Fsync: fsync, RoundTrip: rtt, Commit: 2*fsync + 2*rtt, OnePhase: fsync + 2*rtt,
		Fsync3: fsync3, CommitSharedDisk: fsync3 + fsync + 2*rtt}, nil
}

// timeFsync times n rounds of one 128-byte append with fdatasync to each of
// k fresh logs at once and returns the median round.
func timeFsync(dir string, k, n int) (time.Duration, error) {
	logDir := freshDir(dir, "floor-wal")
	defer os.RemoveAll(logDir)
	logs := make([]*wal.Log, k)
	for i := range logs {
		l, err := wal.Open(wal.Options{Dir: filepath.Join(logDir, fmt.Sprint(i))})
		if err != nil {
			return 0, fmt.Errorf("floor: open log: %w", err)
		}
		defer l.Close()
		logs[i] = l
	}
	payload := bytes.Repeat([]byte{'x'}, 128)
	ds := make([]time.Duration, n)
	errs := make(chan error, k)
	for i := range ds {
		t0 := time.Now()
		for _, l := range logs {
			go func() {
				_, err := l.Append(1, payload)
				errs <- err
			}()
		}
		for range logs {
			if err := <-errs; err != nil {
				return 0, fmt.Errorf("floor: append: %w", err)
			}
		}
		ds[i] = time.Since(t0)
	}
	return median(ds), nil
}

func timeRoundTrip(ctx context.Context, n int) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("floor: listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"votes":[{"id":"tx-0","vote":"yes"}]}` + "\n"))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	hc := newClient(1)
	defer hc.CloseIdleConnections()
	url := "http://" + ln.Addr().String() + "/"
	body := []byte(`{"coordinator":"http://127.0.0.1:1","transactions":[{"id":"tx-0","payload":{"sku":"F-0","quantity":1}}]}`)
	var buf bytes.Buffer
	ds := make([]time.Duration, 0, n)
	for i := 0; i < n+10; i++ {
		t0 := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			return 0, fmt.Errorf("floor: round trip: %w", err)
		}
		buf.Reset()
		buf.ReadFrom(resp.Body)
		resp.Body.Close()
		if i >= 10 { // the first ones open the connection
			ds = append(ds, time.Since(t0))
		}
	}
	return median(ds), nil
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
