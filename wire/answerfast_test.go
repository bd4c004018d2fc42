package wire

import (
	"encoding/json"
	"reflect"
	"testing"
)

var answerBodies = []string{
	`{"votes":[{"id":"tx-1","vote":"yes"},{"id":"tx-2","vote":"no","reason":"sold out"},{"id":"t","vote":"yes","outcome":"committed"}]}` + "\n",
	`{"votes":[]}`, `{}`,
	`{"acknowledged":["a","b"]}`, `{"acknowledged":[],"failed":[{"id":"c","reason":"not prepared","outcome":"aborted"}]}`,
	// Declined by the fast path, decided by encoding/json:
	`{"votes":null}`, `{"Votes":[]}`, `{"votes":[{"id":"a","vote":"maybe"}]}`, `{"votes":[{"id":"a","vote":"yes","extra":1}]}`,
	`{"votes":[{"id":"a\u0062","vote":"yes"}]}`, `{"votes":[{"id":"a","id":"b"}]}`, `{"votes":[1]}`, `{"votes":[]}x`,
	`{"acknowledged":[null]}`, `{"acknowledged":"a"}`, `{"failed":[{"outcome":"later"}]}`, `[]`, ``, `{"votes":[{"vote":"yes"},]}`,
}

// checkAnswerDecode checks that decodeAnswer gives what json.Unmarshal
// gives for body, as each answer type, and reports whether the fast path
// took it as either.
func checkAnswerDecode(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	for _, typ := range []reflect.Type{reflect.TypeFor[PrepareResponse](), reflect.TypeFor[DecisionResponse]()} {
		want, got := reflect.New(typ), reflect.New(typ)
		wantErr := json.Unmarshal(body, want.Interface())
		err := decodeAnswer(body, got.Interface())
		if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
			t.Fatalf("%q as %v: error %v, json.Unmarshal %v", body, typ, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got.Interface(), want.Interface()) {
			t.Fatalf("%q as %v: %+v, json.Unmarshal %+v", body, typ, got.Elem(), want.Elem())
		}
		switch typ {
		case reflect.TypeFor[PrepareResponse]():
			fast = fast || decodePrepareResponseFast(body, new(PrepareResponse))
		default:
			fast = fast || decodeDecisionResponseFast(body, new(DecisionResponse))
		}
	}
	return fast
}

func TestAnswerDecodeFastAgreesWithEncodingJSON(t *testing.T) {
	fast := 0
	for _, b := range answerBodies {
		if checkAnswerDecode(t, []byte(b)) {
			fast++
		}
	}
	if fast != 5 {
		t.Errorf("the fast path took %d of the bodies, want the first 5", fast)
	}
}

func FuzzAnswerDecodeFast(f *testing.F) {
	for _, b := range answerBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkAnswerDecode(t, body) })
}
