package wire

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var protocolBodies = []string{
	`{"coordinator":"http://127.0.0.1:7070","transactions":[{"id":"tx-1","payload":{"sku":"F-1","quantity":1}},{"id":"tx-2","one_phase":true}]}` + "\n",
	`{"ids":["tx-1","tx-2"]}`, `{"ids":[]}`, `{}`, `{"transactions":[{"one_phase":false,"id":"x"}]}`,
	`{"coordinator":"http://127.0.0.1:7070","transactions":[{"id":"tx-1","payload":{"sku":"FL100","quantity":2}},{"id":"tx-2","payload":{"a":[1,-2.5e3,true,false,null,"x",{}],"b":{"c":[]}},"one_phase":true}]}`,
	` { "transactions" : [ { "one_phase" : false , "id" : "a" } ] } ` + "\n", `{"transactions":[]}`, `{"transactions":[{}]}`,
	`{"transactions":[{"id":"a","payload":{"x":"\u0041"}}]}`, `{"transactions":[{"id":"a","payload":[1,"s",2.5]}]}`,
	`{"transactions":[{"id":"a","deadline_ms":1796688000000,"one_phase":true}]}`, `{"transactions":[{"id":"a","deadline_ms":-5}]}`,
	`{"ids":["a","b"],"deadlines_ms":[1796688000000,0]}`, `{"deadlines_ms":[],"ids":["a"]}`,
	// Declined by the fast path, decided by encoding/json:
	`{"transactions":[{"id":"a","id":"b"}]}`, `{"transactions":[{"id":"a","payload":{"x":01}}]}`,
	`{"transactions":[{"id":"a"}],}`, `{"Transactions":[{"id":"a"}]}`, `{"transactions":[{"id":"a"}]} {}`,
	`{"transactions":[{"id":"a","payload":{"x":1.}}]}`, `{"transactions":[{"id":"a","payload":{"x":-}}]}`,
	`{"ids":["a","b"],"ids":["c"]}`, ` {"ids" : [ "x" ] , } `,
	`{"ids":["a"],"deadlines_ms":[1.5]}`, `{"ids":["a"],"deadlines_ms":["1"]}`, `{"ids":["a"],"deadlines_ms":null}`,
	`{"ids":["a"],"deadlines_ms":[1],"deadlines_ms":[2]}`, `{"ids":["a"],"deadlines_ms":[99999999999999999999]}`,
	`{"ids":null}`, `{"IDs":["a"]}`, `{"ids":["a"],"ids":["b"]}`, `{"ids":["a\u0062"]}`, `{"ids":[1]}`,
	`{"transactions":[{"id":"x","one_phase":1}]}`, `{"transactions":[{"id":"x","one_phase":truex}]}`,
	`{"transactions":[{"id":"x","deadline_ms":1.5}]}`, `{"transactions":[{"id":"x","deadline_ms":"1"}]}`,
	`{"transactions":[{"id":"x","deadline_ms":1e3}]}`, `{"transactions":[{"id":"x","deadline_ms":99999999999999999999}]}`,
	`{"transactions":[{"id":"x","deadline_ms":1,"deadline_ms":2}]}`,
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
	if fast != 15 {
		t.Errorf("the fast paths took %d of the bodies, want the first 15", fast)
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

// TestPrepareDecodeFast checks the value the fast path gives for the form
// the coordinator writes, and that a payload, a slice of the body, is capped
// so that appending to it cannot overwrite the rest of the body.
func TestPrepareDecodeFast(t *testing.T) {
	body := []byte(protocolBodies[5])
	var got PrepareRequest
	if !decodePrepareFast(body, &got) {
		t.Fatal("the common form was left to encoding/json")
	}
	want := PrepareRequest{Coordinator: "http://127.0.0.1:7070", Transactions: []PrepareTx{
		{ID: "tx-1", Payload: []byte(`{"sku":"FL100","quantity":2}`)},
		{ID: "tx-2", Payload: []byte(`{"a":[1,-2.5e3,true,false,null,"x",{}],"b":{"c":[]}}`), OnePhase: true},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	var dl PrepareRequest
	if b := `{"transactions":[{"id":"a","deadline_ms":1796688000000,"one_phase":true}]}`; !decodePrepareFast([]byte(b), &dl) ||
		dl.Transactions[0].DeadlineMS != 1796688000000 || !dl.Transactions[0].Deadline().Equal(time.UnixMilli(1796688000000)) {
		t.Fatalf("deadline: %+v", dl)
	}
	if (PrepareTx{}).Deadline() != (time.Time{}) {
		t.Fatal("no deadline_ms gives a deadline")
	}
	_ = append(got.Transactions[0].Payload, "XXXXXXXX"...)
	if string(body) != protocolBodies[5] {
		t.Fatalf("appending to a payload changed the body: %s", body)
	}
}

// A Content-Length past the limit does not size the buffer the body is
// read into: a short body claiming a large one costs no large allocation.
func TestDecodeRequestSizesByLimit(t *testing.T) {
	body := `{"ids":["a"]}`
	decode := func() {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		r.ContentLength = 900_000
		var req DecisionRequest
		if err := DecodeRequest(httptest.NewRecorder(), r, 4096, &req); err != nil || len(req.IDs) != 1 {
			t.Fatalf("DecodeRequest: %+v, %v", req, err)
		}
	}
	decode() // warm up what is allocated once
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	decode()
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("decoding a %d-byte body claiming 900000 allocated %d bytes", len(body), n)
	}
}
