package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/concordtx/concord/wire"
)

// requestDigestV1 is requestDigest as first written: digests are in the
// log, so requestDigest must keep giving these values.
func requestDigestV1(req *wire.SubmitRequest) digest {
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
	if got, want := requestDigest(req), requestDigestV1(req); got != want {
		t.Fatalf("payload %q: digest %x, want %x", payload, got, want)
	}
}

func TestRequestDigestIsUnchanged(t *testing.T) {
	for _, p := range digestPayloads {
		checkDigest(t, 1500, "flights", []byte(p))
	}
	checkDigest(t, 0, "", nil)
	checkDigest(t, 1500, "flights", []byte(`{"note": "`+strings.Repeat("long ", 200)+`"}`)) // more than is hashed on the stack
	if d := requestDigest(&wire.SubmitRequest{}); d != requestDigestV1(&wire.SubmitRequest{}) {
		t.Fatal("the digest of an empty request changed")
	}
}

func FuzzRequestDigest(f *testing.F) {
	for _, p := range digestPayloads {
		f.Add(int64(1500), "flights", []byte(p))
	}
	f.Fuzz(checkDigest)
}
