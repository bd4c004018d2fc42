package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/concordtx/concord/internal/testutil/race"
)

var submitBodies = []string{
	`{"branches":[{"participant":"flights","payload":{"sku":"F-1","quantity":1}},{"participant":"hotels","payload":{"sku":"H-1","quantity":1}}]}`,
	`{"id":"trip-7","timeout_ms":1500,"branches":[{"participant":"cars"}]}`,
	" \n{ \"timeout_ms\" : -0 , \"branches\" : [ ] } \t",
	`{"branches":[{"payload":[1,"a\"b",{"x":null}],"participant":"a"},{"payload":"s"},{"payload":12.5e3},{"payload":true},{}]}`,
	`{"id":""}`, `{}`,
	// Declined by the fast path, decided by encoding/json:
	`{"ID":"x","branches":[]}`, `{"id":"a\u0062"}`, `{"id":"x","id":"y"}`, `{"extra":1}`, `{"timeout_ms":1.5}`,
	`{"timeout_ms":1e3}`, `{"timeout_ms":012}`, `{"timeout_ms":99999999999999999999}`, `{"branches":null}`,
	`{"branches":[{"payload":null}]}`, `{"branches":[{"payload":{"a":}}]}`, `{"branches":[{"participant":"h\u00f4tel"}]}`,
	`{"branches":[{"participant":"hôtel"}]}`, `{"branches":[{"participant":"x","participant":"y"}]}`, `{} {}`, `{}x`,
	`{"branches":[{"payload":1 2}]}`, `{"branches":[{"payload":"abc}]}`, `[]`, ``, ` `, `{`, `{"id":"x",}`, `{,}`,
	`{"branches":[{"payload":{"a":1}}}]}`, `{"branches":[{"payload":-}]}`, `{"timeout_ms":-}`, `{"id":null}`,
}

// checkSubmitDecode checks that decodeRead with decodeSubmitFast gives what
// decodeStrict gives for body, and that the fast path, when it takes body,
// agrees with it.
func checkSubmitDecode(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	var want SubmitRequest
	wantErr := decodeStrict(bytes.NewReader(body), &want)
	var got SubmitRequest
	fast = decodeSubmitFast(body, &got)
	if fast && (wantErr != nil || !reflect.DeepEqual(got, want)) {
		t.Fatalf("%q: fast path %#v, encoding/json %#v (%v)", body, got, want, wantErr)
	}
	var viaRead SubmitRequest
	err := decodeRead(bytes.NewReader(body), int64(len(body)), &viaRead, decodeSubmitFast)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("%q: decodeRead error %v, decodeStrict %v", body, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(viaRead, want) {
		t.Fatalf("%q: decodeRead %#v, decodeStrict %#v", body, viaRead, want)
	}
	// Into a request that holds values already: what the fast path takes
	// replaces them all; what it declines, encoding/json merges into them.
	filled := func() SubmitRequest {
		return SubmitRequest{ID: "old", TimeoutMS: 7, Branches: []Branch{{Participant: "old"}}}
	}
	wantFilled, gotFilled := filled(), filled()
	wantErr = nil
	if fast {
		wantFilled = want
	} else {
		wantErr = decodeStrict(bytes.NewReader(body), &wantFilled)
	}
	err = decodeRead(bytes.NewReader(body), int64(len(body)), &gotFilled, decodeSubmitFast)
	if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
		t.Fatalf("%q into a filled request: decodeRead error %v, want %v", body, err, wantErr)
	}
	if err == nil && !reflect.DeepEqual(gotFilled, wantFilled) {
		t.Fatalf("%q into a filled request: decodeRead %#v, want %#v", body, gotFilled, wantFilled)
	}
	return fast
}

func TestSubmitDecodeFastAgreesWithEncodingJSON(t *testing.T) {
	fast := 0
	for _, b := range submitBodies {
		if checkSubmitDecode(t, []byte(b)) {
			fast++
		}
	}
	if fast != 6 {
		t.Errorf("the fast path took %d of the bodies, want the first 6", fast)
	}
	// What clients send goes the fast way.
	body, _ := json.Marshal(benchSubmit())
	if !checkSubmitDecode(t, body) {
		t.Errorf("the fast path declined %s", body)
	}
}

// A body that fails while being read gives the error reading it directly
// would: the bytes read are replayed, then the failure.
func TestDecodeSubmitReplaysAReadFailure(t *testing.T) {
	boom := errors.New("boom")
	for _, b := range []string{`{"id":"x"`, `{"id":"x"}`, `{"id`} {
		var want, got SubmitRequest
		wantErr := decodeStrict(io.MultiReader(strings.NewReader(b), errReader{boom}), &want)
		err := decodeRead(io.MultiReader(strings.NewReader(b), errReader{boom}), 0, &got, decodeSubmitFast)
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) || !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %v %+v, want %v %+v", b, err, got, wantErr, want)
		}
	}
}

func FuzzSubmitDecodeFast(f *testing.F) {
	for _, b := range submitBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkSubmitDecode(t, body) })
}

// DecodeRequest costs one allocation more than decoding the body it reads
// does: the reader that bounds the body. (Looking for a too-large body's
// error took a second until it was only done on an error.)
func TestDecodeRequestAddsOneAllocation(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	body, _ := json.Marshal(benchSubmit())
	br := bytes.NewReader(body)
	r := httptest.NewRequest(http.MethodPost, PathTransactions, nil)
	r.Body, r.ContentLength = io.NopCloser(br), int64(len(body))
	w := headerOnly{}
	decode := testing.AllocsPerRun(100, func() {
		br.Reset(body)
		var req SubmitRequest
		if err := decodeRead(br, int64(len(body)), &req, decodeSubmitFast); err != nil || len(req.Branches) != 3 {
			t.Fatal(err)
		}
	})
	viaRequest := testing.AllocsPerRun(100, func() {
		br.Reset(body)
		var req SubmitRequest
		if err := DecodeRequest(w, r, 0, &req); err != nil || len(req.Branches) != 3 {
			t.Fatal(err)
		}
	})
	if viaRequest != decode+1 {
		t.Errorf("DecodeRequest: %v allocations, decoding the body: %v", viaRequest, decode)
	}
}
