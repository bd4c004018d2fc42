package coordinator_test

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// benchCoordinator starts a coordinator with its log on the real file
// system (every commit decision fsynced) and three participant doubles over
// HTTP on 127.0.0.1.
func benchCoordinator(b *testing.B) (*coordinator.Coordinator, string) {
	urls := map[string]string{}
	for _, n := range []string{"flights", "hotels", "cars"} {
		urls[n] = testutil.NewParticipant(b, n).URL
	}
	c, err := coordinator.New(coordinator.Options{Dir: b.TempDir(), Participants: urls})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c, c.URL()
}

// BenchmarkCommit3 runs committed three-participant transactions from 256
// concurrent clients, in process (Submit) and over HTTP (client.Submit).
func BenchmarkCommit3(b *testing.B) {
	for _, mode := range []string{"in-process", "http"} {
		b.Run(mode, func(b *testing.B) {
			c, url := benchCoordinator(b)
			cl, _ := client.New(client.Options{URL: url})
			var seq atomic.Int64
			b.SetParallelism((256 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			before := c.Stats()
			start := time.Now()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req := wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("b-%d", seq.Add(1))), Branches: branches("flights", "hotels", "cars")}
					var resp wire.SubmitResponse
					var err error
					if mode == "http" {
						resp, err = cl.Submit(context.Background(), req)
					} else {
						resp, err = c.Submit(context.Background(), req)
					}
					if err != nil || resp.Outcome != concord.OutcomeCommitted {
						b.Errorf("%v %+v", err, resp)
						return
					}
				}
			})
			b.StopTimer()
			elapsed := time.Since(start)
			after := c.Stats()
			n := float64(after.Committed - before.Committed)
			b.ReportMetric(n/elapsed.Seconds(), "tx/s")
			b.ReportMetric(float64(after.Log.Syncs-before.Log.Syncs)/n, "fsyncs/tx")
			msgs := after.PrepareMessages + after.CommitMessages - before.PrepareMessages - before.CommitMessages
			b.ReportMetric(float64(msgs)/float64(after.Requests-before.Requests), "msgs/request")
		})
	}
}

// instantTransport answers every request at once: yes to each PREPARE,
// an acknowledgement of each decision, in the order asked.
type instantTransport struct{}

func (instantTransport) Prepare(_ context.Context, _ string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	resp := wire.PrepareResponse{Votes: make([]wire.VoteReply, len(req.Transactions))}
	for i, tx := range req.Transactions {
		resp.Votes[i] = wire.VoteReply{ID: tx.ID, Vote: concord.VoteYes}
	}
	return resp, nil
}

func (instantTransport) Commit(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return wire.DecisionResponse{Acknowledged: req.IDs}, nil
}

func (instantTransport) Abort(_ context.Context, _ string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	return wire.DecisionResponse{Acknowledged: req.IDs}, nil
}

// BenchmarkCommit3Driver runs committed three-participant transactions
// from 256 concurrent in-process clients against participants that answer
// at once, with the log in memory: the coordinator's own cost per
// transaction (allocs/op), without the network's.
func BenchmarkCommit3Driver(b *testing.B) {
	c, err := coordinator.New(coordinator.Options{Dir: "/data", FS: memfs.New(), Transport: instantTransport{},
		Participants: map[string]string{"flights": "http://x", "hotels": "http://x", "cars": "http://x"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	var seq atomic.Int64
	b.SetParallelism((256 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := wire.SubmitRequest{ID: concord.TxID(fmt.Sprintf("b-%d", seq.Add(1))), Branches: branches("flights", "hotels", "cars")}
			resp, err := c.Submit(context.Background(), req)
			if err != nil || resp.Outcome != concord.OutcomeCommitted {
				b.Errorf("%v %+v", err, resp)
				return
			}
		}
	})
}
