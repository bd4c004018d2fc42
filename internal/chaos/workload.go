package chaos

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// booking is one branch of a chaos transaction: a quantity of a SKU at a
// service.
type booking struct {
	Service  string `json:"service"`
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// txRecord is everything a client saw of one transaction.
type txRecord struct {
	ID       concord.TxID
	Branches []booking
	// Answer is the outcome the coordinator told the client: committed,
	// aborted, or empty when no attempt got an answer.
	Answer string
	Reason string
	// VotedNo is set when a service refused its part (for example, not
	// enough stock), as the coordinator's answer reports.
	VotedNo  bool
	Attempts int
	// Refused is a 4xx answer: the coordinator rejected a request the
	// workload believes well-formed.
	Refused string
	LastErr string
}

// history is every transaction the workload started, in start order.
type history struct {
	mu  sync.Mutex
	txs []*txRecord
}

func (h *history) add(r *txRecord) {
	h.mu.Lock()
	h.txs = append(h.txs, r)
	h.mu.Unlock()
}

// snapshot returns the records; safe only for counting while clients run,
// and for everything once they have stopped.
func (h *history) snapshot() []*txRecord {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*txRecord(nil), h.txs...)
}

// counts tallies answers while clients may still be writing them.
func (h *history) counts() (total, committed, aborted, unanswered int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.txs {
		switch r.Answer {
		case "committed":
			committed++
		case "aborted":
			aborted++
		default:
			unanswered++
		}
	}
	return len(h.txs), committed, aborted, unanswered
}

// votedNo counts the aborted answers in which a service refused its part.
func (h *history) votedNo() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.txs {
		if r.Answer == "aborted" && r.VotedNo {
			n++
		}
	}
	return n
}

// resubmitted counts the bookings sent more than once, while clients may
// still be writing their attempts.
func (h *history) resubmitted() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, r := range h.txs {
		if r.Attempts > 1 {
			n++
		}
	}
	return n
}

// pacer spaces the starts of bookings across clients to a rate.
type pacer struct {
	mu    sync.Mutex
	next  time.Time
	every time.Duration
}

// wait blocks until the caller's slot or until stop closes; false means stop.
func (p *pacer) wait(stop <-chan struct{}) bool {
	p.mu.Lock()
	now := time.Now()
	if p.next.Before(now) {
		p.next = now
	}
	slot := p.next
	p.next = p.next.Add(p.every)
	p.mu.Unlock()
	return sleep(stop, time.Until(slot))
}

// sleep waits d unless stop closes first; false means stop.
func sleep(stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-stop:
		return false
	}
}

// workload runs booking clients against the coordinator.
type workload struct {
	coordURL string
	seed     uint64
	clients  int
	pace     *pacer
	hist     *history
	http     *http.Client
	mu       sync.Mutex
	seq      int
}

func newWorkload(coordURL string, seed uint64, clients int, rate float64) *workload {
	return &workload{
		coordURL: coordURL, seed: seed, clients: clients,
		pace: &pacer{every: time.Duration(float64(time.Second) / rate)},
		hist: &history{},
		http: &http.Client{
			Timeout:   15 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: clients, IdleConnTimeout: 10 * time.Second},
		},
	}
}

// run starts the clients; they stop starting bookings when stop closes and
// the returned WaitGroup is done when every one has finished.
func (w *workload) run(stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for i := range w.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(w.seed, 1000+uint64(i)))
			for w.pace.wait(stop) {
				w.book(stop, rng)
			}
		}()
	}
	return &wg
}

func (w *workload) nextID() concord.TxID {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seq++
	return concord.TxID(fmt.Sprintf("chaos-%d-%07d", w.seed%1_000_000, w.seq))
}

// newBookings picks one to three services, each with a SKU (the scarce one
// in about one case in six) and a quantity of 1 to 3.
func newBookings(rng *rand.Rand) []booking {
	var out []booking
	for len(out) == 0 {
		for _, s := range services {
			if rng.IntN(3) == 0 {
				continue
			}
			st := s.stock[0]
			if rng.IntN(6) == 0 {
				st = s.stock[1]
			}
			out = append(out, booking{Service: s.name, SKU: st.sku, Quantity: 1 + rng.Int64N(3)})
		}
	}
	return out
}

// book runs one transaction, retrying with the same id (an idempotent
// resubmission) when no answer comes.
func (w *workload) book(stop <-chan struct{}, rng *rand.Rand) {
	rec := &txRecord{ID: w.nextID(), Branches: newBookings(rng)}
	req := wire.SubmitRequest{ID: rec.ID, TimeoutMS: 3000}
	for _, b := range rec.Branches {
		payload, _ := json.Marshal(map[string]any{"sku": b.SKU, "quantity": b.Quantity})
		req.Branches = append(req.Branches, wire.Branch{Participant: b.Service, Payload: payload})
	}
	body, _ := json.Marshal(req)
	w.hist.add(rec)
	for attempt := 1; attempt <= 4; attempt++ {
		resp, status, err := w.submit(body)
		w.hist.mu.Lock()
		rec.Attempts = attempt
		switch {
		case err != nil:
			rec.LastErr = err.Error()
		case status >= 400 && status < 500:
			rec.Refused = fmt.Sprintf("http %d: %s", status, resp.Reason)
		case status != http.StatusOK:
			rec.LastErr = fmt.Sprintf("http %d: %s", status, resp.Reason)
		default:
			rec.Answer, rec.Reason = resp.Outcome.String(), resp.Reason
			for _, b := range resp.Branches {
				rec.VotedNo = rec.VotedNo || b.Vote == concord.VoteNo
			}
		}
		done := rec.Answer != "" || rec.Refused != ""
		w.hist.mu.Unlock()
		if done || !sleep(stop, time.Duration(attempt)*150*time.Millisecond) {
			return
		}
	}
}

// submit POSTs one transaction. A non-200 answer's error text is returned
// in the response's Reason.
func (w *workload) submit(body []byte) (wire.SubmitResponse, int, error) {
	var out wire.SubmitResponse
	resp, err := w.http.Post(w.coordURL+wire.PathTransactions, "application/json", bytes.NewReader(body))
	if err != nil {
		return out, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return out, 0, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorResponse
		_ = json.Unmarshal(b, &e)
		out.Reason = e.Error
		if out.Reason == "" {
			out.Reason = string(bytes.TrimSpace(b))
		}
		return out, resp.StatusCode, nil
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return out, 0, fmt.Errorf("decode answer: %w", err)
	}
	if out.Outcome != concord.OutcomeCommitted && out.Outcome != concord.OutcomeAborted {
		return out, 0, fmt.Errorf("answer with outcome %q", out.Outcome)
	}
	return out, resp.StatusCode, nil
}
