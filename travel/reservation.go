package travel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/jsonfast"
)

// Limits on a reservation request.
const (
	MaxQuantity    = 1000 // units in one reservation
	MaxPayloadSize = 4096 // bytes of a reservation payload
)

// Reasons a service votes no. Each is the start of the vote's reason, so a
// client can tell them apart; compare with errors.Is.
var (
	// ErrMalformedPayload: the payload is not one JSON object of the form
	// {"sku": "...", "quantity": N}.
	ErrMalformedPayload = errors.New("malformed payload")
	// ErrBadQuantity: the quantity is not from 1 to MaxQuantity.
	ErrBadQuantity = errors.New("bad quantity")
	// ErrUnknownSKU: this service does not offer the SKU.
	ErrUnknownSKU = errors.New("unknown SKU")
	// ErrNotEnough: fewer units are available than asked for.
	ErrNotEnough = errors.New("not enough left")
)

// ErrNoReservation is returned when a service holds no reservation for a
// transaction: it never prepared it, refused it, or has forgotten it.
var ErrNoReservation = errors.New("no reservation")

// ErrDecided is returned by a commit of an aborted reservation or an abort of
// a committed one.
var ErrDecided = errors.New("reservation already decided the other way")

// Request is the payload a transaction carries to a travel service.
type Request struct {
	SKU      string `json:"sku"`
	Quantity int64  `json:"quantity"`
}

// Payload encodes r as the JSON payload of a transaction branch.
func (r Request) Payload() json.RawMessage {
	b, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("travel: encode request: %v", err)) // a struct of a string and an int always encodes
	}
	return b
}

// DecodeRequest decodes and checks a reservation payload strictly: one JSON
// object with exactly the fields sku and quantity, a valid SKU and a quantity
// from 1 to MaxQuantity. Its errors wrap ErrMalformedPayload or ErrBadQuantity.
func DecodeRequest(payload []byte) (Request, error) {
	sku, qty, err := parseRequest(payload)
	if err != nil {
		return Request{}, err
	}
	return Request{SKU: string(sku), Quantity: qty}, nil
}

// parseRequest is DecodeRequest returning the SKU as bytes, which alias
// payload for a payload of the canonical form.
func parseRequest(payload []byte) (sku []byte, qty int64, err error) {
	if len(payload) == 0 {
		return nil, 0, fmt.Errorf("%w: empty; want {\"sku\": \"...\", \"quantity\": N}", ErrMalformedPayload)
	}
	if len(payload) > MaxPayloadSize {
		return nil, 0, fmt.Errorf("%w: %d bytes, at most %d", ErrMalformedPayload, len(payload), MaxPayloadSize)
	}
	if sku, qty, ok := decodeCanonicalSKU(payload); ok {
		return sku, qty, nil
	}
	r, err := decodeStrict(payload)
	return []byte(r.SKU), r.Quantity, err
}

// decodeStrict is DecodeRequest's general path: encoding/json, strictly.
func decodeStrict(payload []byte) (Request, error) {
	var r Request
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Request{}, fmt.Errorf("%w: data after the object", ErrMalformedPayload)
	}
	if err := ValidateSKU(r.SKU); err != nil {
		return Request{}, fmt.Errorf("%w: %v", ErrMalformedPayload, err)
	}
	if r.Quantity < 1 || r.Quantity > MaxQuantity {
		return Request{}, fmt.Errorf("%w: %d, want 1 to %d", ErrBadQuantity, r.Quantity, MaxQuantity)
	}
	return r, nil
}

// State is where a reservation stands at one service.
type State string

// Reservation states. A refused reservation has no state: the service holds
// nothing for it (presumed abort).
const (
	StatePrepared  State = "prepared"  // held: voted yes, waiting for the decision
	StateCommitted State = "committed" // confirmed
	StateAborted   State = "aborted"   // released
)

// ErrBadState is returned by ParseStateFilter for an unknown state.
var ErrBadState = errors.New("unknown reservation state")

// ParseStateFilter parses a state filter: prepared, committed, aborted, or
// all (also the empty string), which is returned as "".
func ParseStateFilter(s string) (State, error) {
	switch State(s) {
	case StatePrepared, StateCommitted, StateAborted:
		return State(s), nil
	case "", "all":
		return "", nil
	}
	return "", fmt.Errorf("%w %q: want prepared, committed, aborted or all", ErrBadState, s)
}

// Reservation is one transaction's reservation at one service.
type Reservation struct {
	ID       concord.TxID `json:"id"`
	State    State        `json:"state"`
	SKU      string       `json:"sku,omitempty"`
	Quantity int64        `json:"quantity,omitempty"`
	// Reason says why a reservation was refused; such a reservation is
	// aborted and holds no SKU or quantity. Stores that forget refusals at
	// once answer ErrNoReservation instead.
	Reason string `json:"reason,omitempty"`
}

// decodeCanonical parses, without allocating, a payload of the form
// Request.Payload writes: one object whose members are exactly "sku", a
// string of SKU bytes without escapes, and "quantity", an integer from 1 to
// MaxQuantity, in either order, with optional JSON whitespace between
// tokens, read with a jsonfast.Scanner. It reports false for anything else,
// which decodeStrict then judges; what it accepts, decodeStrict accepts as
// the same Request.
func decodeCanonical(p []byte) (Request, bool) {
	sku, qty, ok := decodeCanonicalSKU(p)
	if !ok {
		return Request{}, false
	}
	return Request{SKU: string(sku), Quantity: qty}, true
}

// decodeCanonicalSKU is decodeCanonical returning the SKU as a slice of p.
// It reads the two members in a loop of its own rather than with
// Scanner.Object, which costs a third of the time on so small an object.
func decodeCanonicalSKU(p []byte) (sku []byte, qty int64, ok bool) {
	s := jsonfast.NewScanner(p)
	if !s.Eat('{') {
		return nil, 0, false
	}
	for n := range 2 {
		if n > 0 && !s.Eat(',') {
			return nil, 0, false
		}
		key, ok := s.Plain()
		if !ok || !s.Eat(':') {
			return nil, 0, false
		}
		switch {
		case string(key) == "sku" && sku == nil:
			if sku, ok = s.Plain(); !ok || !validSKU(sku) {
				return nil, 0, false
			}
		case string(key) == "quantity" && qty == 0:
			if qty, ok = s.Int(); !ok || qty < 1 || qty > MaxQuantity {
				return nil, 0, false
			}
		default:
			return nil, 0, false
		}
	}
	if !s.Eat('}') || !s.End() {
		return nil, 0, false
	}
	return sku, qty, true
}

// validSKU reports whether ValidateSKU accepts b, without its error.
func validSKU(b []byte) bool {
	if len(b) == 0 || len(b) > MaxSKULen {
		return false
	}
	for _, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
