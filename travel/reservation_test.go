package travel

import (
	"errors"
	"strings"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	r, err := DecodeRequest([]byte(`{"sku": "FL100", "quantity": 2}`))
	if err != nil || r != (Request{SKU: "FL100", Quantity: 2}) {
		t.Fatalf("got %+v, %v", r, err)
	}
	back, err := DecodeRequest(r.Payload())
	if err != nil || back != r {
		t.Fatalf("payload round trip: %+v, %v", back, err)
	}
}

func TestDecodeRequestErrors(t *testing.T) {
	cases := []struct {
		payload string
		want    error
		mention string
	}{
		{``, ErrMalformedPayload, "empty"},
		{`null`, ErrMalformedPayload, "empty SKU"},
		{`[1]`, ErrMalformedPayload, "cannot unmarshal"},
		{`{"sku": "FL100"`, ErrMalformedPayload, "EOF"},
		{`{"sku": "FL100", "quantity": 2, "x": 1}`, ErrMalformedPayload, `unknown field "x"`},
		{`{"sku": "FL100", "quantity": 2} {}`, ErrMalformedPayload, "after the object"},
		{`{"sku": "FL100", "quantity": 2.5}`, ErrMalformedPayload, "cannot unmarshal"},
		{`{"sku": "FL 100", "quantity": 2}`, ErrMalformedPayload, "byte 2"},
		{`{"sku": "FL100"}`, ErrBadQuantity, "0, want 1 to 1000"},
		{`{"sku": "FL100", "quantity": -3}`, ErrBadQuantity, "-3"},
		{`{"sku": "FL100", "quantity": 1001}`, ErrBadQuantity, "1001"},
		{`{"sku": "` + strings.Repeat("A", MaxPayloadSize) + `", "quantity": 1}`, ErrMalformedPayload, "at most 4096"},
	}
	for _, c := range cases {
		_, err := DecodeRequest([]byte(c.payload))
		if !errors.Is(err, c.want) {
			t.Errorf("DecodeRequest(%.40q) = %v, want %v", c.payload, err, c.want)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("DecodeRequest(%.40q) error %q does not mention %q", c.payload, err, c.mention)
		}
	}
}

func TestParseStateFilter(t *testing.T) {
	for in, want := range map[string]State{"": "", "all": "", "prepared": StatePrepared, "committed": StateCommitted, "aborted": StateAborted} {
		got, err := ParseStateFilter(in)
		if err != nil || got != want {
			t.Errorf("ParseStateFilter(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := ParseStateFilter("pending"); !errors.Is(err, ErrBadState) {
		t.Fatalf("ParseStateFilter(pending) = %v, want ErrBadState", err)
	}
}

// FuzzDecodeRequest checks that any payload is either refused with one of
// the documented reasons or accepted as a valid request that encodes back
// to itself; never a panic.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range []string{`{"sku": "FL100", "quantity": 2}`, `{}`, `null`, `{"sku":"A","quantity":1e3}`, `{"sku":"A","quantity":-1}`, `[`, `{"sku":"A","quantity":1,"sku":"B"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, err := DecodeRequest(payload)
		if err != nil {
			if !errors.Is(err, ErrMalformedPayload) && !errors.Is(err, ErrBadQuantity) {
				t.Fatalf("error %v wraps neither ErrMalformedPayload nor ErrBadQuantity", err)
			}
			return
		}
		if ValidateSKU(r.SKU) != nil || r.Quantity < 1 || r.Quantity > MaxQuantity {
			t.Fatalf("accepted %q as %+v", payload, r)
		}
		back, err := DecodeRequest(r.Payload())
		if err != nil || back != r {
			t.Fatalf("round trip of %+v: %+v, %v", r, back, err)
		}
	})
}

// TestDecodeCanonical checks the allocation-free path on the forms it takes
// and the ones it leaves to the strict decoder.
func TestDecodeCanonical(t *testing.T) {
	for _, s := range []string{`{"sku":"FL100","quantity":2}`, ` { "quantity" : 1000 ,	"sku" : "a.b_c-D" } ` + "\n"} {
		r, ok := decodeCanonical([]byte(s))
		want, err := decodeStrict([]byte(s))
		if !ok || err != nil || r != want {
			t.Errorf("decodeCanonical(%q) = %+v, %v; strict %+v, %v", s, r, ok, want, err)
		}
	}
	for _, s := range []string{`{"sku":"FL100"}`, `{"sku":"FL100","quantity":02}`, `{"sku":"FL100","quantity":1001}`,
		`{"sku":"FL100","quantity":10000}`, `{"sku":"FL100","quantity":1e3}`, `{"sku":"F\u004c","quantity":1}`,
		`{"SKU":"FL100","quantity":1}`, `{"sku":"A","quantity":1,"sku":"B"}`, `{"sku":"A","sku":"B"}`,
		`{"sku":"A","quantity":1}x`, `{"sku":"","quantity":1}`, `{"sku":"A","quantity":1,}`} {
		if r, ok := decodeCanonical([]byte(s)); ok {
			t.Errorf("decodeCanonical(%q) = %+v; want it left to the strict decoder", s, r)
		}
	}
	if n := testing.AllocsPerRun(100, func() { decodeCanonical([]byte(`{"sku":"FL100","quantity":2}`)) }); n > 1 {
		t.Errorf("decodeCanonical allocates %v times; want at most 1 (the SKU)", n)
	}
}

// FuzzDecodeCanonical checks that whatever the fast path accepts, the
// strict decoder accepts as the same request.
func FuzzDecodeCanonical(f *testing.F) {
	for _, s := range []string{`{"sku":"FL100","quantity":2}`, ` {"quantity": 7, "sku": "X"} `, `{"sku":"A","quantity":1,"sku":"B"}`, `{"sku":"A","quantity":0}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		r, ok := decodeCanonical(payload)
		if !ok {
			return
		}
		want, err := decodeStrict(payload)
		if err != nil || r != want {
			t.Fatalf("decodeCanonical(%q) = %+v; strict decoder: %+v, %v", payload, r, want, err)
		}
	})
}

func BenchmarkDecodeRequest(b *testing.B) {
	p := Request{SKU: "FL100", Quantity: 2}.Payload()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}
