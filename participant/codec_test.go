package participant

import (
	"bytes"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/wire"
)

// strict decodes body as the Handler's fallback does.
func strict(body []byte, v any) error {
	r := httptest.NewRequest("POST", "/", bytes.NewReader(body))
	return wire.DecodeRequest(httptest.NewRecorder(), r, 1<<20, v)
}

var prepareSeeds = []string{
	`{"coordinator":"http://127.0.0.1:7070","transactions":[{"id":"tx-1","payload":{"sku":"FL100","quantity":2}},{"id":"tx-2","payload":{"a":[1,-2.5e3,true,false,null,"x",{}],"b":{"c":[]}},"one_phase":true}]}`,
	` { "transactions" : [ { "one_phase" : false , "id" : "a" } ] } ` + "\n",
	`{"transactions":[]}`, `{}`, `{"transactions":[{}]}`,
	`{"transactions":[{"id":"a","id":"b"}]}`, `{"transactions":[{"id":"a","payload":null}]}`,
	`{"transactions":[{"id":"a","payload":{"x":01}}]}`, `{"transactions":[{"id":"a","payload":{"x":"\u0041"}}]}`,
	`{"transactions":[{"id":"a"}],}`, `{"Transactions":[{"id":"a"}]}`, `{"transactions":[{"id":"a"}]} {}`,
	`{"transactions":[{"id":"a","payload":{"x":1.}}]}`, `{"transactions":[{"id":"a","payload":{"x":-}}]}`,
}

// TestDecodePrepareFast checks the fast decoder on the common form and
// that it leaves every other form to the strict decoder.
func TestDecodePrepareFast(t *testing.T) {
	var got wire.PrepareRequest
	if !decodePrepareFast([]byte(prepareSeeds[0]), &got) {
		t.Fatal("the common form was left to the strict decoder")
	}
	want := wire.PrepareRequest{Coordinator: "http://127.0.0.1:7070", Transactions: []wire.PrepareTx{
		{ID: "tx-1", Payload: []byte(`{"sku":"FL100","quantity":2}`)},
		{ID: "tx-2", Payload: []byte(`{"a":[1,-2.5e3,true,false,null,"x",{}],"b":{"c":[]}}`), OnePhase: true},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, s := range prepareSeeds[5:] {
		if decodePrepareFast([]byte(s), &got) {
			t.Errorf("decodePrepareFast(%s) = %+v; want it left to the strict decoder", s, got)
		}
	}
	checkPrepareFast(t, []byte(prepareSeeds[1]))
}

func checkPrepareFast(t *testing.T, body []byte) {
	var fast, slow wire.PrepareRequest
	if !decodePrepareFast(body, &fast) {
		return
	}
	if err := strict(body, &slow); err != nil {
		t.Fatalf("decodePrepareFast took %q, which the strict decoder refuses: %v", body, err)
	}
	if !reflect.DeepEqual(fast, slow) {
		t.Fatalf("%q: fast %+v, strict %+v", body, fast, slow)
	}
}

// FuzzDecodePrepareFast checks that whatever the fast decoder takes, the
// strict decoder takes as the same request.
func FuzzDecodePrepareFast(f *testing.F) {
	for _, s := range prepareSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkPrepareFast(t, body) })
}

// FuzzDecodeDecisionFast is FuzzDecodePrepareFast for decision bodies.
func FuzzDecodeDecisionFast(f *testing.F) {
	for _, s := range []string{`{"ids":["a","b:c"]}`, `{"ids":[]}`, ` {"ids" : [ "x" ] } `, `{"ids":null}`, `{"ids":["a"],"ids":["b"]}`, `{"IDS":["a"]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var fast, slow wire.DecisionRequest
		if !decodeDecisionFast(body, &fast) {
			return
		}
		if err := strict(body, &slow); err != nil {
			t.Fatalf("decodeDecisionFast took %q, which the strict decoder refuses: %v", body, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, strict %+v", body, fast, slow)
		}
	})
}

// TestWriteResponses checks that the hand-written answers are byte for
// byte what wire.WriteJSON writes.
func TestWriteResponses(t *testing.T) {
	same := func(name string, write func(*httptest.ResponseRecorder), v any) {
		t.Helper()
		fast, slow := httptest.NewRecorder(), httptest.NewRecorder()
		write(fast)
		wire.WriteJSON(slow, 200, v)
		if fast.Code != slow.Code || fast.Body.String() != slow.Body.String() || fast.Header().Get("Content-Type") != slow.Header().Get("Content-Type") {
			t.Errorf("%s: wrote %d %q %q, want %d %q %q", name, fast.Code, fast.Header().Get("Content-Type"), fast.Body,
				slow.Code, slow.Header().Get("Content-Type"), slow.Body)
		}
	}
	for _, resp := range []wire.PrepareResponse{
		{Votes: []wire.VoteReply{{ID: "a", Vote: concord.VoteYes}, {ID: "b:1", Vote: concord.VoteReadOnly}, {ID: "c", Vote: concord.VoteNone}}},
		{Votes: []wire.VoteReply{{ID: "a", Vote: concord.VoteNo, Reason: "sold <out> & \"gone\""}}},
		{Votes: []wire.VoteReply{{ID: "a", Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}}},
		{Votes: []wire.VoteReply{}}, {},
	} {
		same("prepare", func(w *httptest.ResponseRecorder) { writePrepareResponse(w, resp) }, resp)
	}
	for _, resp := range []wire.DecisionResponse{
		{Acknowledged: []concord.TxID{"a", "b"}}, {Acknowledged: []concord.TxID{}},
		{Acknowledged: []concord.TxID{"a"}, Failed: []wire.TxFailure{{ID: "b", Reason: "unknown"}}}, {},
	} {
		same("decision", func(w *httptest.ResponseRecorder) { writeDecisionResponse(w, resp) }, resp)
	}
}
