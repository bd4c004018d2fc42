package participant_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/cputime"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wire"
)

// nopMachine votes yes on everything and keeps no state: the benchmark
// measures the SDK and the store, not a domain.
type nopMachine struct{}

func (nopMachine) Prepare(concord.TxID, json.RawMessage) participant.PrepareResult {
	return participant.PrepareResult{Vote: concord.VoteYes}
}
func (nopMachine) Commit(concord.TxID)       {}
func (nopMachine) Abort(concord.TxID)        {}
func (nopMachine) Snapshot() ([]byte, error) { return []byte("{}"), nil }
func (nopMachine) Restore([]byte) error      { return nil }

// BenchmarkPrepareCommit runs prepare then commit of one transaction (or a
// batch of them) per iteration through a Server over the file store on the real file system
// (two forced writes each, shared by group commit), at several client
// counts, directly and over HTTP. cpu-us/tx is the processor time of the
// whole process (clients, HTTP and file system calls included) per
// transaction.
func BenchmarkPrepareCommit(b *testing.B) {
	for _, httpMode := range []bool{false, true} {
		for _, clients := range []int{1, 16, 64, 256} {
			name := fmt.Sprintf("direct/clients=%d", clients)
			if httpMode {
				name = fmt.Sprintf("http/clients=%d", clients)
			}
			b.Run(name, func(b *testing.B) { benchPrepareCommit(b, clients, httpMode, 1) })
		}
	}
	// As the coordinator sends them under load: 16 transactions a request.
	for _, clients := range []int{4, 16} {
		b.Run(fmt.Sprintf("http-batch16/clients=%d", clients), func(b *testing.B) { benchPrepareCommit(b, clients, true, 16) })
	}
}

func benchPrepareCommit(b *testing.B, clients int, httpMode bool, batch int) {
	st, err := filestore.Open(filestore.Options{Dir: b.TempDir(), FS: wal.OSFS{}, Machine: nopMachine{}})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	srv, err := participant.NewServer(participant.Options{Resource: st, Clock: participanttest.NewFakeClock(time.Unix(0, 0)), MaxConcurrency: 512})
	if err != nil {
		b.Fatal(err)
	}
	defer srv.Close()
	if err := srv.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	prepare, commit := srv.Prepare, srv.Commit
	if httpMode {
		hs := httptest.NewServer(srv.Handler())
		defer hs.Close()
		pc := &wire.ParticipantClient{BaseURL: hs.URL, HTTP: wire.NewHTTPClient(0)}
		prepare, commit = pc.Prepare, pc.Commit
	}
	var n atomic.Int64
	syncs0 := st.Stats().Log.Syncs
	b.SetParallelism((clients + 1) / 2) // RunParallel runs parallelism*GOMAXPROCS goroutines
	if clients == 1 {
		b.SetParallelism(1)
	}
	b.ResetTimer()
	cpu0, cpuOK := cputime.Process()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		txs := make([]wire.PrepareTx, batch)
		ids := make([]concord.TxID, batch)
		for pb.Next() {
			for i := range batch {
				ids[i] = concord.TxID(fmt.Sprintf("b%d", n.Add(1)))
				txs[i] = wire.PrepareTx{ID: ids[i], Payload: json.RawMessage(`{}`)}
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
	cpu1, _ := cputime.Process()
	done := float64(n.Load())
	if cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/1e3/done, "cpu-us/tx")
	}
	b.ReportMetric(done/b.Elapsed().Seconds(), "tx/s")
	b.ReportMetric(float64(st.Stats().Log.Syncs-syncs0)/done, "fsyncs/tx")
}
