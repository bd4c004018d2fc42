package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/concordtx/concord/wire"
)

// requestDigestV1Ref is requestDigest as first written: digests are in
// old logs, so requestDigestV1 must keep giving these values.
func requestDigestV1Ref(req *wire.SubmitRequest) digest {
	h := sha256.New()
	var buf bytes.Buffer
	buf.WriteString("timeout_ms=")
	buf.WriteString(strconv.FormatInt(req.TimeoutMS, 10))
	for _, b := range req.Branches {
		buf.WriteString("\x00p")
		buf.WriteString(strconv.Itoa(len(b.Participant)))
		buf.WriteByte(':')
		buf.WriteString(b.Participant)
		var c bytes.Buffer
		if len(b.Payload) > 0 && json.Compact(&c, b.Payload) == nil {
			buf.WriteString("\x00j")
			buf.WriteString(strconv.Itoa(c.Len()))
			buf.WriteByte(':')
			buf.Write(c.Bytes())
		} else {
			buf.WriteString("\x00r")
			buf.WriteString(strconv.Itoa(len(b.Payload)))
			buf.WriteByte(':')
			buf.Write(b.Payload)
		}
	}
	h.Write(buf.Bytes())
	var d digest
	h.Sum(d[:0])
	return d
}

var digestPayloads = []string{
	``, `{"sku":"F-1","quantity":1}`, `{ "sku" : "F-1",` + "\n" + `"quantity": 1 }`, `{"a":"x y"}`, `{"a":"<&>"}`,
	`"\u2028"`, "\"\xe2\x80\xa8\"", `[1,2`, `{"a":1}}`, `nul`, `null`, `12`, " 12 ", "{\"a\":\"\xff\"}",
}

func checkDigest(t *testing.T, timeout int64, participant string, payload []byte) {
	t.Helper()
	req := &wire.SubmitRequest{TimeoutMS: timeout, Branches: []wire.Branch{
		{Participant: participant, Payload: payload}, {Participant: "b", Payload: json.RawMessage(`{"x":1}`)}}}
	if got, want := requestDigestV1(req), requestDigestV1Ref(req); got != want {
		t.Fatalf("payload %q: digest %x, want %x", payload, got, want)
	}
}

func TestRequestDigestIsUnchanged(t *testing.T) {
	for _, p := range digestPayloads {
		checkDigest(t, 1500, "flights", []byte(p))
	}
	checkDigest(t, 0, "", nil)
	checkDigest(t, 1500, "flights", []byte(`{"note": "`+strings.Repeat("long ", 200)+`"}`)) // more than is hashed on the stack
	if d := requestDigestV1(&wire.SubmitRequest{}); d != requestDigestV1Ref(&wire.SubmitRequest{}) {
		t.Fatal("the digest of an empty request changed")
	}
}

func FuzzRequestDigest(f *testing.F) {
	for _, p := range digestPayloads {
		f.Add(int64(1500), "flights", []byte(p))
	}
	f.Fuzz(checkDigest)
}

// Two requests are the same exactly as docs/protocol.md says: white space,
// member order, string escapes, the spelling of a number, the order of
// the branches and timeout_ms do not count; anything else does.
func TestRequestDigestSameRequest(t *testing.T) {
	req := func(timeout int64, bs ...string) *wire.SubmitRequest {
		r := &wire.SubmitRequest{TimeoutMS: timeout}
		for i := 0; i < len(bs); i += 2 {
			r.Branches = append(r.Branches, wire.Branch{Participant: bs[i], Payload: json.RawMessage(bs[i+1])})
		}
		return r
	}
	base := req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`, "hotels", `{"room":"double"}`)
	same := []*wire.SubmitRequest{
		req(0, "flights", `{"quantity":1,"sku":"F-1","tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", " {\n\t\"sku\" : \"F-1\", \"quantity\" : 1 , \"tags\" : [ \"a\" , \"b\" ] } ", "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1.0,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":10e-1,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1E0,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F\u002d1","quantity":1,"tags":["\u0061","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "hotels", `{"room":"double"}`, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`),
		req(30000, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
	}
	for _, r := range same {
		if requestDigest(r) != requestDigest(base) {
			t.Errorf("%s differs from %s; it is the same request", branchText(r), branchText(base))
		}
	}
	different := []*wire.SubmitRequest{
		req(0, "flights", `{"sku":"F-1","quantity":2,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":"1","tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["b","a"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1.0000000000000000001,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"f-1","quantity":1,"tags":["a","b"]}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"],"x":null}`, "hotels", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`),
		req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`, "cars", `{"room":"double"}`),
		req(0, "flights", `{"sku":"F-1","quantity":1,"tags":["a","b"]}`, "hotels", `{"room":"double"}`, "cars", ``),
	}
	for _, r := range different {
		if requestDigest(r) == requestDigest(base) {
			t.Errorf("%s is taken for %s; it is a different request", branchText(r), branchText(base))
		}
	}
	// No payload and null are the same; a payload that is not JSON, or
	// repeats a key, is compared byte for byte.
	if requestDigest(req(0, "f", ``)) != requestDigest(req(0, "f", `null`)) {
		t.Error("no payload and null differ")
	}
	for _, p := range [][2]string{{`{"a":1,"a":2}`, `{"a":1, "a":2}`}, {`{"a":`, `{"a": `}} {
		if requestDigest(req(0, "f", p[0])) == requestDigest(req(0, "f", p[1])) {
			t.Errorf("%s and %s, with no canonical form, are taken for the same", p[0], p[1])
		}
	}
}

// A client that decodes its payload and encodes it again (as a map: keys
// sorted, strings escaped its own way, numbers kept as written) sends the
// same request; and the canonical form is its own canonical form.
func FuzzCanonicalPayload(f *testing.F) {
	for _, p := range digestPayloads {
		f.Add([]byte(p))
	}
	f.Add([]byte(`{"b":[1,2.50,-0,1e3,{"y":"<\u00e9>","x":"\n"}],"a":{"\u0062":true,"a":null}}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, ok := appendCanonical(nil, payload)
		if !ok {
			return
		}
		if again, ok := appendCanonical(nil, c); !ok || !bytes.Equal(again, c) {
			t.Fatalf("canonical form of %q is %q, whose own is %q (%v)", payload, c, again, ok)
		}
		if !json.Valid(payload) {
			t.Fatalf("%q is not JSON but has a canonical form %q", payload, c)
		}
		if !json.Valid(c) {
			t.Fatalf("canonical form of %q is %q: not JSON", payload, c)
		}
		if !utf8.Valid(payload) {
			return // a decoder replaces invalid bytes: not the same text
		}
		d := json.NewDecoder(bytes.NewReader(payload))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			t.Fatalf("%q has a canonical form but does not decode: %v", payload, err)
		}
		re, err := json.Marshal(v)
		if err != nil {
			return // a number json.Number does not take
		}
		if rc, ok := appendCanonical(nil, re); !ok || !bytes.Equal(rc, c) {
			t.Fatalf("%q re-encoded as %q: canonical %q (%v), want %q", payload, re, rc, ok, c)
		}
	})
}

func branchText(r *wire.SubmitRequest) string {
	var b strings.Builder
	fmt.Fprintf(&b, "timeout %d", r.TimeoutMS)
	for _, br := range r.Branches {
		fmt.Fprintf(&b, " %s:%s", br.Participant, br.Payload)
	}
	return b.String()
}
