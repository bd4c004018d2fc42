package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord/internal/jsonfast"
	"github.com/concordtx/concord/wire"
)

// phase is one load phase: Concurrency clients submitting transactions of
// Participants branches for a duration or a count.
type phase struct {
	concurrency  int
	participants int
	duration     time.Duration
	count        int
	abortRatio   float64
	skus         int
	timeoutMS    int64
	clientIDs    bool // each transaction with an id of its own: see Options.ClientIDs
}

// tally is what the clients of a phase saw.
type tally struct {
	committed, aborted, errors atomic.Int64
	firstErr                   atomic.Pointer[string]
	maxNanos                   atomic.Int64 // slowest answer since the last progress line
}

// noteLatency keeps the slowest answer since the last progress line.
func (t *tally) noteLatency(d time.Duration) {
	for {
		cur := t.maxNanos.Load()
		if int64(d) <= cur || t.maxNanos.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (t *tally) fail(err error) {
	t.errors.Add(1)
	msg := err.Error()
	t.firstErr.CompareAndSwap(nil, &msg)
}

// bodies pre-encodes the submit requests of a phase: for each client's SKU
// one that commits and one whose last branch names a SKU no service offers,
// so that it aborts with a no vote.
type bodies struct {
	commit, abort [][]byte
}

func makeBodies(p phase) (bodies, error) {
	var b bodies
	for i := 0; i < p.skus; i++ {
		for _, abort := range []bool{false, true} {
			req := wire.SubmitRequest{TimeoutMS: p.timeoutMS}
			for j, svc := range Services[:p.participants] {
				sku := skuName(svc, i)
				if abort && j == p.participants-1 {
					sku = "NO-SUCH-SKU"
				}
				payload, _ := json.Marshal(map[string]any{"sku": sku, "quantity": 1})
				req.Branches = append(req.Branches, wire.Branch{Participant: svc, Payload: payload})
			}
			body, err := json.Marshal(req)
			if err != nil {
				return bodies{}, fmt.Errorf("encode request: %w", err)
			}
			if abort {
				b.abort = append(b.abort, body)
			} else {
				b.commit = append(b.commit, body)
			}
		}
	}
	return b, nil
}

// newClient returns an HTTP client for the stats reads and the floor.
func newClient(conns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        conns + 16,
		MaxIdleConnsPerHost: conns + 16,
		IdleConnTimeout:     90 * time.Second,
	}}
}

// load runs one phase against coordURL and returns the tally and every
// successful transaction's latency. progress, when set, is called every
// tick with the tally so far.
func load(ctx context.Context, coordURL string, p phase, tick time.Duration,
	progress func(elapsed time.Duration, t *tally)) (*tally, []time.Duration, time.Duration, error) {
	bs, err := makeBodies(p)
	if err != nil {
		return nil, nil, 0, err
	}
	t := &tally{}
	var claimed atomic.Int64
	runCtx := ctx
	if p.count == 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, p.duration)
		defer cancel()
	}
	lats := make([][]time.Duration, p.concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < p.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cn, err := newConn(coordURL)
			if err != nil {
				t.fail(err)
				return
			}
			defer cn.close()
			rng := rand.New(rand.NewPCG(uint64(w), 0x62656e6368))
			sku := w % p.skus
			var buf bytes.Buffer
			var withID []byte
			run := time.Now().UnixNano() // ids of one run differ from another's
			for n := 0; runCtx.Err() == nil; n++ {
				if p.count > 0 && claimed.Add(1) > int64(p.count) {
					return
				}
				body := bs.commit[sku]
				if p.abortRatio > 0 && rng.Float64() < p.abortRatio {
					body = bs.abort[sku]
				}
				if p.clientIDs { // {"id":"b-<run>-<client>-<n>", then the rest of the body
					withID = fmt.Appendf(withID[:0], `{"id":"b-%x-%d-%d",`, run, w, n)
					withID = append(withID, body[1:]...)
					body = withID
				}
				t0 := time.Now()
				outcome, err := submit(ctx, cn, body, &buf)
				d := time.Since(t0)
				switch {
				case err != nil && runCtx.Err() != nil && p.count == 0:
					return // the phase ended mid-request: not counted
				case err != nil:
					t.fail(err)
					continue
				case outcome == "committed":
					t.committed.Add(1)
				case outcome == "aborted":
					t.aborted.Add(1)
				default:
					t.fail(fmt.Errorf("outcome %q", outcome))
					continue
				}
				lats[w] = append(lats[w], d)
				t.noteLatency(d)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	ticker := time.NewTicker(tick)
	defer ticker.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-ticker.C:
			if progress != nil {
				progress(time.Since(start), t)
			}
		}
	}
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return t, all, elapsed, nil
}

// submit posts one transaction and returns its outcome.
func submit(ctx context.Context, cn *conn, body []byte, buf *bytes.Buffer) (string, error) {
	status, err := cn.post(ctx, wire.PathTransactions, body, buf)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("http %d: %s", status, bytes.TrimSpace(buf.Bytes()))
	}
	if o, ok := outcomeFast(buf.Bytes()); ok {
		return o, nil
	}
	var out struct {
		Outcome string `json:"outcome"`
	}
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		return "", fmt.Errorf("decode answer: %w", err)
	}
	return out.Outcome, nil
}

// outcomeFast reads the outcome of a submit answer in the plain form the
// coordinator writes, skipping the other members, so that the load
// generator spends less of the machine it measures; it declines anything
// else (including a repeated outcome) to encoding/json.
func outcomeFast(b []byte) (string, bool) {
	p := jsonfast.NewScanner(b)
	var outcome []byte
	other := uint(1)
	ok := p.Object(func() (uint, bool) {
		if string(p.Key()) == "outcome" {
			v, ok := p.Plain()
			outcome = v
			return 1, ok
		}
		other <<= 1 // a distinct bit per other member
		_, ok := p.Value()
		return other, ok && other != 0
	}) && p.End() && outcome != nil
	return string(outcome), ok
}
