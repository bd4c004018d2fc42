package travel

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sync/atomic"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/cputime"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
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

// BenchmarkServiceCPU measures the processor time a service spends per
// transaction, without the disk and the network: a travel service over the
// file store in a directory of /dev/shm (memory, where a sync costs next to
// nothing; the test's temporary directory if there is none), its tables
// first filled to their retention sizes as in a long-running service, then
// one goroutine preparing and committing batches of 16 reservations with
// random ids like the coordinator's.
// "direct" calls the participant server; "handler" goes through its HTTP
// handler, so that decoding the request and encoding the answer count too.
// An op is one batch; ns/tx is wall time per transaction and cpu-ns/tx the
// process's processor time per transaction (garbage collection and the
// store's background snapshots included), which the other work of a
// shared machine disturbs less; writes/tx and fsyncs/tx count the log's
// write and sync calls.
func BenchmarkServiceCPU(b *testing.B) {
	for _, mode := range []string{"direct", "handler"} {
		b.Run(mode+"/batch=16", func(b *testing.B) { benchServiceCPU(b, mode == "handler", 16) })
	}
}

func benchServiceCPU(b *testing.B, viaHandler bool, batch int) {
	const skus = 64
	stock := make([]Stock, skus)
	for i := range stock {
		stock[i] = Stock{SKU: fmt.Sprintf("SKU%d", i), Capacity: MaxCapacity}
	}
	inv, err := NewInventory(stock)
	if err != nil {
		b.Fatal(err)
	}
	// Sync at once: with one goroutine, no other call's sync would come
	// to cover a commit within the delay.
	fst, err := filestore.Open(filestore.Options{Dir: memDir(b), Machine: machine{inv}, CommitSyncDelay: -1})
	if err != nil {
		b.Fatal(err)
	}
	svc, err := New(Options{Name: "bench", Store: &FileStore{Store: fst, inv: inv}, Server: participant.Options{MaxConcurrency: 512}})
	if err != nil {
		b.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		b.Fatal(err)
	}
	srv, h := svc.Server(), svc.Handler()
	payloads := make([]json.RawMessage, skus)
	for i := range payloads {
		payloads[i] = Request{SKU: stock[i].SKU, Quantity: 1}.Payload()
	}
	rng := rand.New(rand.NewPCG(1, 2))
	txs := make([]wire.PrepareTx, batch)
	ids := make([]concord.TxID, batch)
	var body []byte
	w := &discardWriter{header: http.Header{}}
	prepReq := httptest.NewRequest(http.MethodPost, wire.PathPrepare, nil)
	commitReq := httptest.NewRequest(http.MethodPost, wire.PathCommit, nil)
	post := func(r *http.Request, in any) {
		body, _ = json.Marshal(in)
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		w.status = 0
		h.ServeHTTP(w, r)
		if w.status != http.StatusOK {
			b.Fatalf("%s: status %d", r.URL.Path, w.status)
		}
	}
	round := func() {
		for i := range batch {
			var raw [12]byte
			binary.LittleEndian.PutUint64(raw[:], rng.Uint64())
			binary.LittleEndian.PutUint32(raw[8:], rng.Uint32())
			ids[i] = concord.TxID("tx-" + hex.EncodeToString(raw[:]))
			txs[i] = wire.PrepareTx{ID: ids[i], Payload: payloads[rng.IntN(skus)]}
		}
		if viaHandler {
			post(prepReq, wire.PrepareRequest{Coordinator: "http://127.0.0.1:7070", Transactions: txs})
			post(commitReq, wire.DecisionRequest{IDs: ids})
			return
		}
		resp, err := srv.Prepare(ctx, wire.PrepareRequest{Coordinator: "http://127.0.0.1:7070", Transactions: txs})
		if err != nil || len(resp.Votes) != batch || resp.Votes[0].Vote != concord.VoteYes {
			b.Fatalf("prepare %s: %+v %v", ids[0], resp, err)
		}
		dec, err := srv.Commit(ctx, ids)
		if err != nil || len(dec.Acknowledged) != batch {
			b.Fatalf("commit %s: %+v %v", ids[0], dec, err)
		}
	}
	// Fill the tables: the file store remembers every decision until its
	// deadline (none given: a minute from now) plus a minute; 100,000 is
	// what the store held at its busiest before; the inventory 10,000.
	for range 100_000 / batch {
		round()
	}
	b.ReportAllocs()
	n := 0
	log0 := fst.Stats().Log
	cpu0, cpuOK := cputime.Process()
	for b.Loop() {
		round()
		n += batch
	}
	cpu1, _ := cputime.Process()
	log1 := fst.Stats().Log
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/tx")
	b.ReportMetric(float64(log1.Writes-log0.Writes)/float64(n), "writes/tx")
	b.ReportMetric(float64(log1.Syncs-log0.Syncs)/float64(n), "fsyncs/tx")
	if cpuOK {
		b.ReportMetric(float64((cpu1-cpu0).Nanoseconds())/float64(n), "cpu-ns/tx")
	}
}

// memDir returns a new directory in memory (tmpfs), removed after b, or
// b.TempDir() if /dev/shm is not there.
func memDir(b *testing.B) string {
	dir, err := os.MkdirTemp("/dev/shm", "concord-bench-")
	if err != nil {
		return b.TempDir()
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// discardWriter is an http.ResponseWriter that keeps only the status.
type discardWriter struct {
	header http.Header
	status int
}

func (w *discardWriter) Header() http.Header  { return w.header }
func (w *discardWriter) WriteHeader(code int) { w.status = code }
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}
