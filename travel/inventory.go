package travel

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// DecidedRetention is how many decided (committed or aborted) reservations an
// Inventory remembers for queries; older ones are forgotten, oldest first.
// Prepared reservations are never forgotten.
const DecidedRetention = 10_000

// Item is the state of one SKU. Available + Held + Confirmed = Capacity at
// every instant.
type Item struct {
	SKU       string `json:"sku"`
	Capacity  int64  `json:"capacity"`
	Available int64  `json:"available"`
	Held      int64  `json:"held"`
	Confirmed int64  `json:"confirmed"`
}

// Inventory is a service's stock and reservations in memory: the pure,
// deterministic domain logic that a durable store drives. It does no I/O.
// It is safe for concurrent use.
type Inventory struct {
	mu      sync.Mutex
	order   []string // SKUs in configuration order
	items   map[string]*Item
	res     map[concord.TxID]*Reservation
	decided []*Reservation // decided reservations still remembered, oldest first
	retain  int            // DecidedRetention; lower in tests
}

// NewInventory returns an inventory offering stock, with nothing held or
// confirmed.
func NewInventory(stock []Stock) (*Inventory, error) {
	if err := validateStock(stock); err != nil {
		return nil, err
	}
	v := &Inventory{retain: DecidedRetention}
	v.reset(stock)
	return v, nil
}

func (v *Inventory) reset(stock []Stock) {
	v.order = make([]string, len(stock))
	v.items = make(map[string]*Item, len(stock))
	v.res = make(map[concord.TxID]*Reservation)
	v.decided = nil
	for i, s := range stock {
		v.order[i] = s.SKU
		v.items[s.SKU] = &Item{SKU: s.SKU, Capacity: s.Capacity, Available: s.Capacity}
	}
}

// Stock lists the capacity of every SKU in configuration order.
func (v *Inventory) Stock() []Stock {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Stock, len(v.order))
	for i, sku := range v.order {
		out[i] = Stock{SKU: sku, Capacity: v.items[sku].Capacity}
	}
	return out
}

// Reserve holds what payload asks for on behalf of transaction id. It
// refuses, holding nothing, with an error wrapping ErrMalformedPayload,
// ErrBadQuantity, ErrUnknownSKU or ErrNotEnough. For an id it already holds
// or confirmed it returns that reservation unchanged; for one it released it
// returns ErrDecided.
func (v *Inventory) Reserve(id concord.TxID, payload []byte) (Reservation, error) {
	sku, qty, err := parseRequest(payload)
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.res[id]; ok {
		if r.State == StateAborted {
			return Reservation{}, fmt.Errorf("%w: %s was aborted", ErrDecided, id)
		}
		return *r, nil
	}
	if err != nil {
		return Reservation{}, err
	}
	return v.reserve(id, sku, qty)
}

// reserveNew is Reserve for an id the inventory must not know: for one
// it remembers, it holds nothing and returns the reservation's state and
// false.
func (v *Inventory) reserveNew(id concord.TxID, payload []byte) (State, bool, error) {
	sku, qty, err := parseRequest(payload)
	v.mu.Lock()
	defer v.mu.Unlock()
	if r, ok := v.res[id]; ok {
		return r.State, false, nil
	}
	if err == nil {
		_, err = v.reserve(id, sku, qty)
	}
	return "", true, err
}

// reserve holds qty of sku for id, which has no reservation; v.mu is held.
func (v *Inventory) reserve(id concord.TxID, sku []byte, qty int64) (Reservation, error) {
	it, ok := v.items[string(sku)]
	if !ok {
		return Reservation{}, fmt.Errorf("%w %q", ErrUnknownSKU, sku)
	}
	if it.Available < qty {
		return Reservation{}, fmt.Errorf("%w: %s has %d available, %d asked", ErrNotEnough, sku, it.Available, qty)
	}
	it.Available -= qty
	it.Held += qty
	r := &Reservation{ID: id, State: StatePrepared, SKU: it.SKU, Quantity: qty}
	v.res[id] = r
	return *r, nil
}

// Commit confirms the reservation held for id. Committing a committed one
// changes nothing; an unknown one returns ErrNoReservation and an aborted one
// ErrDecided.
func (v *Inventory) Commit(id concord.TxID) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.res[id]
	if !ok {
		return fmt.Errorf("commit %s: %w", id, ErrNoReservation)
	}
	switch r.State {
	case StateCommitted:
		return nil
	case StateAborted:
		return fmt.Errorf("commit %s: %w", id, ErrDecided)
	}
	it := v.items[r.SKU]
	it.Held -= r.Quantity
	it.Confirmed += r.Quantity
	v.decide(r, StateCommitted)
	return nil
}

// Abort releases the reservation held for id. Aborting an aborted or unknown
// one changes nothing; a committed one returns ErrDecided.
func (v *Inventory) Abort(id concord.TxID) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.res[id]
	if !ok || r.State == StateAborted {
		return nil
	}
	if r.State == StateCommitted {
		return fmt.Errorf("abort %s: %w", id, ErrDecided)
	}
	it := v.items[r.SKU]
	it.Held -= r.Quantity
	it.Available += r.Quantity
	v.decide(r, StateAborted)
	return nil
}

// decide moves r to a final state and forgets the oldest decided reservations
// past DecidedRetention. v.mu is held.
func (v *Inventory) decide(r *Reservation, s State) {
	r.State = s
	v.decided = append(v.decided, r)
	for len(v.decided) > v.retain {
		if old := v.decided[0]; v.res[old.ID] == old {
			delete(v.res, old.ID)
		}
		v.decided[0] = nil
		v.decided = v.decided[1:]
	}
}

// Items lists every SKU's state in configuration order.
func (v *Inventory) Items() []Item {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Item, len(v.order))
	for i, sku := range v.order {
		out[i] = *v.items[sku]
	}
	return out
}

// Reservation returns the reservation of transaction id, or ErrNoReservation.
func (v *Inventory) Reservation(id concord.TxID) (Reservation, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	r, ok := v.res[id]
	if !ok {
		return Reservation{}, fmt.Errorf("%s: %w", id, ErrNoReservation)
	}
	return *r, nil
}

// Reservations lists the remembered reservations in state s (every state for
// ""), ordered by transaction id.
func (v *Inventory) Reservations(s State) []Reservation {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []Reservation
	for _, r := range v.res {
		if s == "" || r.State == s {
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b Reservation) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

// Check verifies conservation: for every SKU, available + held + confirmed =
// capacity with none negative, and held is the sum of the prepared
// reservations' quantities.
func (v *Inventory) Check() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.check()
}

func (v *Inventory) check() error {
	held := make(map[string]int64, len(v.items))
	for id, r := range v.res {
		if _, ok := v.items[r.SKU]; !ok {
			return fmt.Errorf("reservation %s: unknown SKU %q", id, r.SKU)
		}
		if r.State == StatePrepared {
			held[r.SKU] += r.Quantity
		}
	}
	for _, sku := range v.order {
		it := v.items[sku]
		if it.Available < 0 || it.Held < 0 || it.Confirmed < 0 {
			return fmt.Errorf("%s: negative count: available %d, held %d, confirmed %d", sku, it.Available, it.Held, it.Confirmed)
		}
		if it.Available+it.Held+it.Confirmed != it.Capacity {
			return fmt.Errorf("%s: available %d + held %d + confirmed %d != capacity %d", sku, it.Available, it.Held, it.Confirmed, it.Capacity)
		}
		if held[sku] != it.Held {
			return fmt.Errorf("%s: held %d but prepared reservations hold %d", sku, it.Held, held[sku])
		}
	}
	return nil
}

// snapshot is the encoded form of an Inventory.
type snapshot struct {
	Version  int           `json:"version"`
	Items    []Item        `json:"items"`
	Prepared []Reservation `json:"prepared"`
	Decided  []Reservation `json:"decided"` // oldest first
}

const snapshotVersion = 1

// Snapshot encodes the whole inventory, reservations included, for Restore.
func (v *Inventory) Snapshot() ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := snapshot{Version: snapshotVersion, Items: make([]Item, len(v.order))}
	for i, sku := range v.order {
		s.Items[i] = *v.items[sku]
	}
	for _, r := range v.res {
		if r.State == StatePrepared {
			s.Prepared = append(s.Prepared, *r)
		}
	}
	slices.SortFunc(s.Prepared, func(a, b Reservation) int { return bytes.Compare([]byte(a.ID), []byte(b.ID)) })
	// The decided reservations, up to DecidedRetention of them, are most
	// of it: they are written by hand, as encoding/json would write them.
	head, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	// Room for every reservation as appendReservation writes it: its
	// strings and 48 bytes of keys, quotes, commas and a quantity of up to
	// four digits, enough unless a reservation has both a SKU and a reason
	// (append then grows the buffer).
	size := len(head) + 2
	for _, r := range v.decided {
		size += 48 + len(r.ID) + len(r.State) + len(r.SKU) + len(r.Reason)
	}
	b := make([]byte, 0, size)
	if !bytes.HasSuffix(head, []byte(`"decided":null}`)) {
		return nil, fmt.Errorf("encode inventory: unexpected form %.40q", head)
	}
	b = append(b, head[:len(head)-len(`null}`)]...) // s.Decided is nil
	b = append(b, '[')
	for i, r := range v.decided {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = appendReservation(b, r); err != nil {
			return nil, err
		}
	}
	return append(b, "]}"...), nil
}

// appendReservation appends r encoded as json.Marshal encodes it.
func appendReservation(b []byte, r *Reservation) ([]byte, error) {
	if !jsonfast.IsPlain(string(r.ID)) || !jsonfast.IsPlain(string(r.State)) || !jsonfast.IsPlain(r.SKU) || !jsonfast.IsPlain(r.Reason) {
		m, err := json.Marshal(r)
		return append(b, m...), err
	}
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","state":"`...)
	b = append(b, r.State...)
	b = append(b, '"')
	if r.SKU != "" {
		b = append(b, `,"sku":"`...)
		b = append(b, r.SKU...)
		b = append(b, '"')
	}
	if r.Quantity != 0 {
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, r.Quantity, 10)
	}
	if r.Reason != "" {
		b = append(b, `,"reason":"`...)
		b = append(b, r.Reason...)
		b = append(b, '"')
	}
	return append(b, '}'), nil
}

// Restore replaces the inventory with one encoded by Snapshot. It checks the
// snapshot fully (valid SKUs and ids, conservation) and leaves v unchanged on
// error.
func (v *Inventory) Restore(b []byte) error {
	var s snapshot
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("restore inventory: %w", err)
	}
	if s.Version != snapshotVersion {
		return fmt.Errorf("restore inventory: version %d, want %d", s.Version, snapshotVersion)
	}
	stock := make([]Stock, len(s.Items))
	for i, it := range s.Items {
		stock[i] = Stock{SKU: it.SKU, Capacity: it.Capacity}
	}
	if err := validateStock(stock); err != nil {
		return fmt.Errorf("restore inventory: %w", err)
	}
	n := &Inventory{}
	n.reset(stock)
	for _, it := range s.Items {
		*n.items[it.SKU] = it
	}
	add := func(r Reservation, want ...State) error {
		if err := concord.ValidateTxID(r.ID); err != nil {
			return err
		}
		if !slices.Contains(want, r.State) {
			return fmt.Errorf("reservation %s: state %q", r.ID, r.State)
		}
		if r.Quantity < 1 || r.Quantity > MaxQuantity {
			return fmt.Errorf("reservation %s: %w: %d", r.ID, ErrBadQuantity, r.Quantity)
		}
		if _, dup := n.res[r.ID]; dup {
			return fmt.Errorf("reservation %s listed twice", r.ID)
		}
		n.res[r.ID] = &r
		if r.State != StatePrepared {
			n.decided = append(n.decided, &r)
		}
		return nil
	}
	for _, r := range s.Prepared {
		if err := add(r, StatePrepared); err != nil {
			return fmt.Errorf("restore inventory: %w", err)
		}
	}
	if len(s.Decided) > v.retain {
		s.Decided = s.Decided[len(s.Decided)-v.retain:]
	}
	for _, r := range s.Decided {
		if err := add(r, StateCommitted, StateAborted); err != nil {
			return fmt.Errorf("restore inventory: %w", err)
		}
	}
	if err := n.check(); err != nil {
		return fmt.Errorf("restore inventory: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.order, v.items, v.res, v.decided = n.order, n.items, n.res, n.decided
	return nil
}
