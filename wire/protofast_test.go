package wire

import (
	"bytes"
	"reflect"
	"testing"
)

var protocolBodies = []string{
	`{"coordinator":"http://127.0.0.1:7070","transactions":[{"id":"tx-1","payload":{"sku":"F-1","quantity":1}},{"id":"tx-2","one_phase":true}]}` + "\n",
	`{"ids":["tx-1","tx-2"]}`, `{"ids":[]}`, `{}`, `{"transactions":[{"one_phase":false,"id":"x"}]}`,
	// Declined by the fast path, decided by encoding/json:
	`{"ids":null}`, `{"IDs":["a"]}`, `{"ids":["a"],"ids":["b"]}`, `{"ids":["a\u0062"]}`, `{"ids":[1]}`,
	`{"transactions":[{"id":"x","one_phase":1}]}`, `{"transactions":[{"id":"x","one_phase":truex}]}`,
	`{"transactions":[{"id":"x","payload":null}]}`, `{"transactions":[{"id":"x","extra":1}]}`, `{"coordinator":"a"} x`,
	`{"transactions":null}`, `{"coordinator":null}`, ``, `[`,
}

// checkProtocolDecode checks that DecodeRequest's reading of a PREPARE or
// decision batch gives what decodeStrict gives, for body as each, and
// reports whether a fast path took it.
func checkProtocolDecode(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	var wantP, gotP PrepareRequest
	wantErr := decodeStrict(bytes.NewReader(body), &wantP)
	err := decodeRead(bytes.NewReader(body), int64(len(body)), &gotP, decodePrepareFast)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) || (err == nil && !reflect.DeepEqual(gotP, wantP)) {
		t.Fatalf("%q as a PREPARE batch: %#v (%v), encoding/json %#v (%v)", body, gotP, err, wantP, wantErr)
	}
	var wantD, gotD DecisionRequest
	wantErr = decodeStrict(bytes.NewReader(body), &wantD)
	err = decodeRead(bytes.NewReader(body), int64(len(body)), &gotD, decodeDecisionFast)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) || (err == nil && !reflect.DeepEqual(gotD, wantD)) {
		t.Fatalf("%q as a decision batch: %#v (%v), encoding/json %#v (%v)", body, gotD, err, wantD, wantErr)
	}
	return decodePrepareFast(body, new(PrepareRequest)) || decodeDecisionFast(body, new(DecisionRequest))
}

func TestProtocolDecodeFastAgreesWithEncodingJSON(t *testing.T) {
	fast := 0
	for _, b := range protocolBodies {
		if checkProtocolDecode(t, []byte(b)) {
			fast++
		}
	}
	if fast != 5 {
		t.Errorf("the fast paths took %d of the bodies, want the first 5", fast)
	}
	// What the coordinator sends goes the fast way.
	body, _ := appendRequest(nil, benchPrepareBatch(3))
	if !checkProtocolDecode(t, body) {
		t.Errorf("the fast path declined %s", body)
	}
}

func FuzzProtocolDecodeFast(f *testing.F) {
	for _, b := range protocolBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkProtocolDecode(t, body) })
}
