package wire

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/race"
)

// checkSubmitResponse checks that appendSubmitResponse, when it encodes r,
// writes what json.Marshal writes.
func checkSubmitResponse(t *testing.T, r SubmitResponse) bool {
	t.Helper()
	want, wantErr := json.Marshal(r)
	got, ok := appendSubmitResponse(nil, &r)
	if ok && (wantErr != nil || string(got) != string(want)) {
		t.Fatalf("%+v: fast %s, json.Marshal %s (%v)", r, got, want, wantErr)
	}
	return ok
}

func TestSubmitResponseFastAgreesWithEncodingJSON(t *testing.T) {
	yes := []BranchResult{{Participant: "flights", Vote: concord.VoteYes}, {Participant: "hotels", Vote: concord.VoteReadOnly}}
	for _, tc := range []struct {
		r    SubmitResponse
		fast bool
	}{
		{SubmitResponse{ID: "tx-0123456789abcdef01234567", Outcome: concord.OutcomeCommitted, Branches: yes}, true},
		{SubmitResponse{ID: "a", Outcome: concord.OutcomeAborted, Reason: "hotels voted no: full",
			Branches: []BranchResult{{Participant: "hotels", Vote: concord.VoteNo, Reason: "full"}}}, true},
		{SubmitResponse{ID: "p", Outcome: concord.OutcomePending, Reason: "no outcome yet; ask /v1/transactions/p"}, true},
		{SubmitResponse{Branches: []BranchResult{}}, true},
		{SubmitResponse{ID: "a", Outcome: concord.OutcomeAborted, Reason: "<b> & \"q\""}, false},
		{SubmitResponse{ID: "a", Reason: "h\u00f4tel\n"}, false},
		{SubmitResponse{ID: "a", Outcome: 9}, false},
		{SubmitResponse{ID: "a", Branches: []BranchResult{{Participant: "x", Vote: 42}}}, false},
	} {
		if got := checkSubmitResponse(t, tc.r); got != tc.fast {
			t.Errorf("%+v: fast path %v, want %v", tc.r, got, tc.fast)
		}
	}
}

func FuzzSubmitResponseEncode(f *testing.F) {
	f.Add("tx-1", uint8(1), "", "flights", uint8(1), "", 2)
	f.Add("a<b", uint8(2), "r\u2028", "h\\", uint8(9), "x&y", 0)
	f.Fuzz(func(t *testing.T, id string, outcome uint8, reason, participant string, vote uint8, why string, n int) {
		r := SubmitResponse{ID: concord.TxID(id), Outcome: concord.Outcome(outcome), Reason: reason}
		if n >= 0 {
			for i := 0; i < n%4; i++ {
				r.Branches = append(r.Branches, BranchResult{Participant: participant, Vote: concord.Vote(vote), Reason: why})
			}
			if r.Branches == nil {
				r.Branches = []BranchResult{}
			}
		}
		checkSubmitResponse(t, r)
	})
}

// appendRequest appends in, a PrepareRequest or DecisionRequest, as
// DirectClient encodes it.
func appendRequest(b []byte, in any) ([]byte, bool) {
	switch r := in.(type) {
	case PrepareRequest:
		return appendPrepareRequest(b, &r)
	case DecisionRequest:
		return appendDecisionRequest(b, r.IDs, r.DeadlinesMS)
	}
	return b, false
}

// checkRequestEncode checks that appendRequest, when it encodes in, writes
// what json.Marshal writes.
func checkRequestEncode(t *testing.T, in any) bool {
	t.Helper()
	want, wantErr := json.Marshal(in)
	got, ok := appendRequest(nil, in)
	if ok && (wantErr != nil || string(got) != string(want)) {
		t.Fatalf("%+v: fast %s, json.Marshal %s (%v)", in, got, want, wantErr)
	}
	return ok
}

func TestRequestFastAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		in   any
		fast bool
	}{
		{benchPrepareBatch(3), true},
		{PrepareRequest{Coordinator: "http://c", Transactions: []PrepareTx{{ID: "a", OnePhase: true}, {ID: "b", Payload: json.RawMessage(`[1,"x y"]`)}}}, false},
		{PrepareRequest{Coordinator: "http://c", Transactions: []PrepareTx{{ID: "a", Payload: json.RawMessage(`{"a":[1,true,null]}`), OnePhase: true}}}, true},
		{PrepareRequest{}, true},
		{PrepareRequest{Coordinator: "http://c", Transactions: []PrepareTx{{ID: "a", DeadlineMS: 1_796_688_000_123}, {ID: "b", OnePhase: true, DeadlineMS: -1}}}, true},
		{PrepareRequest{Transactions: []PrepareTx{{ID: "a", Payload: json.RawMessage(`{"a":"<"}`)}}}, false},
		{PrepareRequest{Transactions: []PrepareTx{{ID: "a", Payload: json.RawMessage(`{"a":`)}}}, false},
		{DecisionRequest{IDs: []concord.TxID{"a", "b"}}, true},
		{DecisionRequest{}, true},
		{DecisionRequest{IDs: []concord.TxID{}}, true},
		{DecisionRequest{IDs: []concord.TxID{"a\"b"}}, false},
		{DecisionRequest{IDs: []concord.TxID{"a", "b"}, DeadlinesMS: []int64{1_796_688_000_123, 0}}, true},
		{DecisionRequest{DeadlinesMS: []int64{-1}}, true},
		{DecisionRequest{IDs: []concord.TxID{}, DeadlinesMS: []int64{}}, true},
		{SubmitRequest{}, false},
	} {
		if got := checkRequestEncode(t, tc.in); got != tc.fast {
			t.Errorf("%+v: fast path %v, want %v", tc.in, got, tc.fast)
		}
	}
}

func FuzzRequestEncode(f *testing.F) {
	f.Add("http://127.0.0.1:7070", "tx-1", []byte(`{"sku":"F-1","quantity":1}`), true, 2)
	f.Add("a&b", "x", []byte(`{"a": 1}`), false, 1)
	f.Fuzz(func(t *testing.T, coord, id string, payload []byte, onePhase bool, n int) {
		prep := PrepareRequest{Coordinator: coord}
		dec := DecisionRequest{}
		for i := 0; i < n%4; i++ {
			prep.Transactions = append(prep.Transactions, PrepareTx{ID: concord.TxID(id), Payload: payload, OnePhase: onePhase,
				DeadlineMS: int64(n) * int64(i)})
			dec.IDs = append(dec.IDs, concord.TxID(id))
			if n%8 >= 4 {
				dec.DeadlinesMS = append(dec.DeadlinesMS, int64(n)*int64(i-1))
			}
		}
		checkRequestEncode(t, prep)
		checkRequestEncode(t, dec)
	})
}

// checkAnswerEncode checks that appendAnswer, when it encodes v, writes
// what json.Marshal writes.
func checkAnswerEncode(t *testing.T, v any) bool {
	t.Helper()
	want, wantErr := json.Marshal(v)
	got, ok := appendAnswer(nil, v)
	if ok && (wantErr != nil || string(got) != string(want)) {
		t.Fatalf("%+v: fast %s, json.Marshal %s (%v)", v, got, want, wantErr)
	}
	return ok
}

func TestAnswerFastAgreesWithEncodingJSON(t *testing.T) {
	for _, tc := range []struct {
		v    any
		fast bool
	}{
		{PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteYes}, {ID: "b", Vote: concord.VoteNo, Reason: "full"},
			{ID: "c", Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}}}, true},
		{PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteYes}, {ID: "b:1", Vote: concord.VoteReadOnly}, {ID: "c", Vote: concord.VoteNone}}}, true},
		{PrepareResponse{}, true},
		{PrepareResponse{Votes: []VoteReply{}}, true},
		{PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteNo, Reason: "sold <out> & \"gone\""}}}, false},
		{PrepareResponse{Votes: []VoteReply{{ID: "a", Reason: "<x>"}}}, false},
		{PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: 77}}}, false},
		{DecisionResponse{Acknowledged: []concord.TxID{"a", "b"}}, true},
		{DecisionResponse{}, true},
		{DecisionResponse{Acknowledged: []concord.TxID{}, Failed: []TxFailure{{ID: "c", Reason: "never prepared"}, {ID: "d", Outcome: concord.OutcomeAborted}}}, true},
		{DecisionResponse{Failed: []TxFailure{{ID: "c", Outcome: 9}}}, false},
		{DecisionResponse{Acknowledged: []concord.TxID{"a"}, Forgotten: []concord.TxID{"a"}}, false},
		{SubmitResponse{}, false},
	} {
		if got := checkAnswerEncode(t, tc.v); got != tc.fast {
			t.Errorf("%+v: fast path %v, want %v", tc.v, got, tc.fast)
		}
	}
}

func FuzzAnswerEncode(f *testing.F) {
	f.Add("tx-1", uint8(1), "", uint8(0), 2, true)
	f.Add("a&b", uint8(9), "r\n", uint8(5), 1, false)
	f.Fuzz(func(t *testing.T, id string, vote uint8, reason string, outcome uint8, n int, nilSlices bool) {
		var prep PrepareResponse
		var dec DecisionResponse
		if !nilSlices {
			prep.Votes, dec.Acknowledged = []VoteReply{}, []concord.TxID{}
		}
		for i := 0; i < n%4; i++ {
			prep.Votes = append(prep.Votes, VoteReply{ID: concord.TxID(id), Vote: concord.Vote(vote), Reason: reason, Outcome: concord.Outcome(outcome)})
			dec.Acknowledged = append(dec.Acknowledged, concord.TxID(id))
			dec.Failed = append(dec.Failed, TxFailure{ID: concord.TxID(id), Reason: reason, Outcome: concord.Outcome(outcome)})
		}
		checkAnswerEncode(t, prep)
		checkAnswerEncode(t, dec)
	})
}

// TestWriteJSONAnswers checks what a participant's handlers answer: status,
// Content-Type and json.Marshal's bytes and a newline, whichever way
// WriteJSON takes.
func TestWriteJSONAnswers(t *testing.T) {
	for _, v := range []any{
		PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteYes}, {ID: "b:1", Vote: concord.VoteReadOnly}}},
		PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteNo, Reason: "sold <out> & \"gone\""}}},
		PrepareResponse{Votes: []VoteReply{{ID: "a", Vote: concord.VoteYes, Outcome: concord.OutcomeCommitted}}},
		PrepareResponse{Votes: []VoteReply{}}, PrepareResponse{},
		DecisionResponse{Acknowledged: []concord.TxID{"a", "b"}}, DecisionResponse{Acknowledged: []concord.TxID{}},
		DecisionResponse{Acknowledged: []concord.TxID{"a"}, Failed: []TxFailure{{ID: "b", Reason: "unknown"}}}, DecisionResponse{},
		DecisionResponse{Acknowledged: []concord.TxID{"a", "b"}, Forgotten: []concord.TxID{"b"}},
		SubmitResponse{ID: "a", Outcome: concord.OutcomeCommitted, Branches: []BranchResult{{Participant: "flights", Vote: concord.VoteYes}}},
		&SubmitResponse{ID: "a", Outcome: concord.OutcomeAborted, Reason: "flights voted no: <full>", Branches: []BranchResult{{Participant: "flights", Vote: concord.VoteNo}}},
		&SubmitResponse{ID: "b", Outcome: concord.OutcomeCommitted, Branches: []BranchResult{{Participant: "hotels", Vote: concord.VoteReadOnly}}},
		(*SubmitResponse)(nil),
	} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		WriteJSON(rec, http.StatusOK, v)
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" || rec.Body.String() != string(want)+"\n" {
			t.Errorf("%+v: wrote %d %q %q, want 200 application/json %q", v, rec.Code, rec.Header().Get("Content-Type"), rec.Body, want)
		}
	}
}

// headerOnly is a ResponseWriter that keeps its header and discards the rest.
type headerOnly http.Header

func (h headerOnly) Header() http.Header       { return http.Header(h) }
func (headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (headerOnly) WriteHeader(int)             {}

// Answering a submit allocates nothing of its own: the JSON is written
// into a reused buffer, from the response the coordinator holds.
func TestWriteJSONSubmitResponseAllocatesNothing(t *testing.T) {
	if race.Enabled {
		t.Skip("allocations are not counted under the race detector")
	}
	r := &SubmitResponse{ID: "tx-1", Outcome: concord.OutcomeCommitted, Branches: []BranchResult{
		{Participant: "flights", Vote: concord.VoteYes}, {Participant: "hotels", Vote: concord.VoteYes}, {Participant: "cars", Vote: concord.VoteYes}}}
	w := headerOnly{}
	if n := testing.AllocsPerRun(100, func() { WriteJSON(w, http.StatusOK, r) }); n != 0 {
		t.Errorf("%v allocations, want 0", n)
	}
}
