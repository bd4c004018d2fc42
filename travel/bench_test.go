package travel

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// BenchmarkServicePrepareCommit prepares then commits a batch of 16
// reservations per iteration on a service over the file store on the real
// file system, as the coordinator sends them under load: directly through
// the participant server, and over HTTP. allocs/op and B/op are per batch.
func BenchmarkServicePrepareCommit(b *testing.B) {
	for _, httpMode := range []bool{false, true} {
		name := "direct"
		if httpMode {
			name = "http"
		}
		b.Run(name+"/batch=16", func(b *testing.B) { benchService(b, httpMode, 16) })
	}
}

func benchService(b *testing.B, httpMode bool, batch int) {
	const skus = 16
	stock := make([]Stock, skus)
	for i := range stock {
		stock[i] = Stock{SKU: fmt.Sprintf("SKU%d", i), Capacity: MaxCapacity}
	}
	st, err := OpenFileStore(StoreConfig{Service: "bench", Dir: b.TempDir(), Stock: stock})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(Options{Name: "bench", Store: st, Server: participant.Options{MaxConcurrency: 512}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	srv := svc.Server()
	prepare, commit := srv.Prepare, srv.Commit
	if httpMode {
		hs := httptest.NewServer(svc.Handler())
		defer hs.Close()
		pc := &wire.ParticipantClient{BaseURL: hs.URL, HTTP: wire.NewHTTPClient(0)}
		prepare, commit = pc.Prepare, pc.Commit
	}
	payloads := make([][]byte, skus)
	for i := range payloads {
		payloads[i] = Request{SKU: stock[i].SKU, Quantity: 1}.Payload()
	}
	var n atomic.Int64
	b.SetParallelism(8) // 16 clients on 2 cores
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		txs := make([]wire.PrepareTx, batch)
		ids := make([]concord.TxID, batch)
		for pb.Next() {
			for i := range batch {
				k := n.Add(1)
				ids[i] = concord.TxID(fmt.Sprintf("b%d", k))
				txs[i] = wire.PrepareTx{ID: ids[i], Payload: payloads[k%skus]}
			}
			resp, err := prepare(ctx, wire.PrepareRequest{Transactions: txs})
			if err != nil || len(resp.Votes) != batch || resp.Votes[0].Vote != concord.VoteYes {
				b.Errorf("prepare %s: %+v %v", ids[0], resp, err)
				return
			}
			dec, err := commit(ctx, ids)
			if err != nil || len(dec.Acknowledged) != batch {
				b.Errorf("commit %s: %+v %v", ids[0], dec, err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(n.Load())/b.Elapsed().Seconds(), "tx/s")
}
