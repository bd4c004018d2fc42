package wire

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/race"
)

var answerBodies = []string{
	`{"votes":[{"id":"tx-1","vote":"yes"},{"id":"tx-2","vote":"no","reason":"sold out"},{"id":"t","vote":"yes","outcome":"committed"}]}` + "\n",
	`{"votes":[]}`, `{}`,
	`{"acknowledged":["a","b"]}`, `{"acknowledged":[],"failed":[{"id":"c","reason":"not prepared","outcome":"aborted"}]}`,
	// Declined by the fast path, decided by encoding/json:
	`{"votes":null}`, `{"Votes":[]}`, `{"votes":[{"id":"a","vote":"maybe"}]}`, `{"votes":[{"id":"a","vote":"yes","extra":1}]}`,
	`{"votes":[{"id":"a\u0062","vote":"yes"}]}`, `{"votes":[{"id":"a","id":"b"}]}`, `{"votes":[1]}`, `{"votes":[]}x`,
	`{"acknowledged":["a"],"forgotten":["a"]}`, `{"acknowledged":[null]}`, `{"acknowledged":"a"}`, `{"failed":[{"outcome":"later"}]}`, `[]`, ``, `{"votes":[{"vote":"yes"},]}`,
}

// decodeAnswer decodes b into out, a *PrepareResponse or
// *DecisionResponse, as DirectClient does.
func decodeAnswer(b []byte, out any, q asked) error {
	switch v := out.(type) {
	case *PrepareResponse:
		return decodePrepareAnswer(b, v, q)
	case *DecisionResponse:
		return decodeDecisionAnswer(b, v, q)
	}
	panic(fmt.Sprintf("decodeAnswer into %T", out))
}

// checkAnswerDecode checks that decodeAnswer gives what json.Unmarshal
// gives for body, as each answer type, whatever the request asked, and
// reports whether the fast path took it as either.
func checkAnswerDecode(t *testing.T, body []byte) (fast bool) {
	t.Helper()
	// What the request may have asked: nothing known, the ids the answer
	// names in its order (as a participant answers), fewer, and others.
	var named []concord.TxID
	var pr PrepareResponse
	if json.Unmarshal(body, &pr) == nil {
		for _, v := range pr.Votes {
			named = append(named, v.ID)
		}
	}
	var dr DecisionResponse
	if json.Unmarshal(body, &dr) == nil {
		named = append(named, dr.Acknowledged...)
	}
	txs := make([]PrepareTx, len(named))
	for i, id := range named {
		txs[i].ID = id
	}
	qs := []asked{{}, {txs: txs}, {ids: named}, {ids: named[:len(named)/2]}, {ids: []concord.TxID{"x", ""}}, {txs: []PrepareTx{{ID: "tx-2"}}}}
	for _, typ := range []reflect.Type{reflect.TypeFor[PrepareResponse](), reflect.TypeFor[DecisionResponse]()} {
		want := reflect.New(typ)
		wantErr := json.Unmarshal(body, want.Interface())
		if typ == reflect.TypeFor[PrepareResponse]() && wantErr == nil {
			if wantErr = repeatedKey(body); wantErr != nil {
				want = reflect.New(typ)
			}
		}
		for _, q := range qs {
			got := reflect.New(typ)
			err := decodeAnswer(body, got.Interface(), q)
			if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
				t.Fatalf("%q as %v, asked %v: error %v, json.Unmarshal %v", body, typ, q, err, wantErr)
			}
			if err == nil && !reflect.DeepEqual(got.Interface(), want.Interface()) {
				t.Fatalf("%q as %v, asked %v: %+v, json.Unmarshal %+v", body, typ, q, got.Elem(), want.Elem())
			}
		}
		switch typ {
		case reflect.TypeFor[PrepareResponse]():
			fast = fast || decodePrepareResponseFast(body, new(PrepareResponse), asked{})
		default:
			fast = fast || decodeDecisionResponseFast(body, new(DecisionResponse), asked{})
		}
	}
	return fast
}

// An answer that names the transactions in the order asked costs one
// allocation, its list: the ids are the request's strings.
func TestAnswerDecodeReusesTheIDsAsked(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	txs := []PrepareTx{{ID: "tx-1"}, {ID: "tx-2"}, {ID: "tx-3"}}
	ids := []concord.TxID{"tx-1", "tx-2", "tx-3"}
	votes := []byte(`{"votes":[{"id":"tx-1","vote":"yes"},{"id":"tx-2","vote":"yes"},{"id":"tx-3","vote":"read-only"}]}`)
	acks := []byte(`{"acknowledged":["tx-1","tx-2","tx-3"]}`)
	pr, dr := new(PrepareResponse), new(DecisionResponse)
	for _, c := range []struct {
		name string
		body []byte
		out  any
		q    asked
		want float64
	}{
		{"votes", votes, pr, asked{txs: txs}, 1},
		{"acknowledgements", acks, dr, asked{ids: ids}, 1},
		{"votes, nothing known of the request", votes, pr, asked{}, 4},
		{"acknowledgements, nothing known of the request", acks, dr, asked{}, 4},
	} {
		n := testing.AllocsPerRun(100, func() {
			if err := decodeAnswer(c.body, c.out, c.q); err != nil {
				t.Fatal(err)
			}
		})
		if n != c.want {
			t.Errorf("%s: %v allocations, want %v", c.name, n, c.want)
		}
	}
	if err := decodeAnswer(votes, pr, asked{txs: txs}); err != nil {
		t.Fatal(err)
	}
	if len(pr.Votes) != 3 || cap(pr.Votes) != 3 || pr.Votes[2].ID != "tx-3" || pr.Votes[2].Vote != concord.VoteReadOnly {
		t.Errorf("votes %+v (capacity %d)", pr.Votes, cap(pr.Votes))
	}
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

// A vote that names its vote twice is malformed, whichever comes first,
// on the fast path and off it (an unknown key sends it off).
func TestPrepareAnswerRepeatedKey(t *testing.T) {
	for _, b := range []string{
		`{"votes":[{"id":"t","vote":"no","vote":"yes"}]}`,
		`{"votes":[{"id":"t","vote":"yes","x":1,"vote":"no"}]}`,
		`{"votes":[{"id":"t","vote":"no"}],"votes":[{"id":"t","vote":"yes"}]}`,
		`{"votes":[{"id":"t","id":"u","vote":"yes"}]}`,
	} {
		var r PrepareResponse
		if err := decodePrepareAnswer([]byte(b), &r, asked{}); err == nil {
			t.Errorf("%s decoded as %+v; want an error", b, r)
		}
	}
	var r PrepareResponse
	if err := decodePrepareAnswer([]byte(`{"votes":[{"id":"t","vote":"yes","x":{"vote":1}},{"id":"u","vote":"no"}]}`), &r, asked{}); err != nil || len(r.Votes) != 2 {
		t.Errorf("distinct keys in distinct objects: %+v, %v", r, err)
	}
}
