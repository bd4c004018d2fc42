package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/concordtx/concord"
)

func benchSubmit() SubmitRequest {
	req := SubmitRequest{}
	for _, p := range []string{"flights", "hotels", "cars"} {
		req.Branches = append(req.Branches, Branch{Participant: p, Payload: json.RawMessage(`{"sku":"F-1","quantity":1}`)})
	}
	return req
}

// BenchmarkSubmitDecodeStrict decodes a three-branch submit body as the
// coordinator does: strictly, unknown fields refused.
func BenchmarkSubmitDecodeStrict(b *testing.B) {
	body, _ := json.Marshal(benchSubmit())
	b.ReportAllocs()
	for b.Loop() {
		var req SubmitRequest
		if err := decodeStrict(bytes.NewReader(body), &req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitDecode decodes a three-branch submit body as DecodeRequest
// does: read whole, then the fast path.
func BenchmarkSubmitDecode(b *testing.B) {
	body, _ := json.Marshal(benchSubmit())
	b.ReportAllocs()
	for b.Loop() {
		var req SubmitRequest
		if err := decodeRead(bytes.NewReader(body), int64(len(body)), &req, decodeSubmitFast); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitResponseEncode encodes the answer to a committed
// three-branch transaction.
func BenchmarkSubmitResponseEncode(b *testing.B) {
	resp := SubmitResponse{ID: "tx-0123456789abcdef01234567", Outcome: concord.OutcomeCommitted}
	for _, p := range []string{"flights", "hotels", "cars"} {
		resp.Branches = append(resp.Branches, BranchResult{Participant: p, Vote: concord.VoteYes})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSubmitResponseAppend encodes the same answer with the encoder
// WriteJSON uses, into a new buffer.
func BenchmarkSubmitResponseAppend(b *testing.B) {
	resp := SubmitResponse{ID: "tx-0123456789abcdef01234567", Outcome: concord.OutcomeCommitted}
	for _, p := range []string{"flights", "hotels", "cars"} {
		resp.Branches = append(resp.Branches, BranchResult{Participant: p, Vote: concord.VoteYes})
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := appendSubmitResponse(make([]byte, 0, 256), &resp); !ok {
			b.Fatal("declined")
		}
	}
}

// BenchmarkWriteJSONSubmitResponse answers with the same response as the
// coordinator's submit handler does.
func BenchmarkWriteJSONSubmitResponse(b *testing.B) {
	resp := &SubmitResponse{ID: "tx-0123456789abcdef01234567", Outcome: concord.OutcomeCommitted}
	for _, p := range []string{"flights", "hotels", "cars"} {
		resp.Branches = append(resp.Branches, BranchResult{Participant: p, Vote: concord.VoteYes})
	}
	w := headerOnly{}
	b.ReportAllocs()
	for b.Loop() {
		WriteJSON(w, http.StatusOK, resp)
	}
}

func benchPrepareBatch(n int) PrepareRequest {
	req := PrepareRequest{Coordinator: "http://127.0.0.1:7070"}
	for i := 0; i < n; i++ {
		req.Transactions = append(req.Transactions, PrepareTx{ID: concord.TxID(fmt.Sprintf("tx-%024d", i)),
			Payload: json.RawMessage(`{"sku":"F-1","quantity":1}`), DeadlineMS: 1_796_688_000_000 + int64(i)})
	}
	return req
}

// BenchmarkPrepareBatchRoundTrip encodes a batch of 16 PREPAREs (the
// coordinator), decodes it strictly (the participant), and does the same
// for the 16 votes: the JSON work of one batched prepare request.
func BenchmarkPrepareBatchRoundTrip(b *testing.B) {
	req := benchPrepareBatch(16)
	resp := PrepareResponse{}
	for _, tx := range req.Transactions {
		resp.Votes = append(resp.Votes, VoteReply{ID: tx.ID, Vote: concord.VoteYes})
	}
	b.ReportAllocs()
	for b.Loop() {
		body, err := json.Marshal(req)
		if err != nil {
			b.Fatal(err)
		}
		var got PrepareRequest
		if err := decodeStrict(bytes.NewReader(body), &got); err != nil {
			b.Fatal(err)
		}
		out, err := json.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		var votes PrepareResponse
		if err := json.Unmarshal(out, &votes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareBatchCoordinatorSide encodes a batch of 16 PREPAREs and
// decodes the 16 votes as the coordinator's DirectClient does.
func BenchmarkPrepareBatchCoordinatorSide(b *testing.B) {
	req := benchPrepareBatch(16)
	resp := PrepareResponse{}
	for _, tx := range req.Transactions {
		resp.Votes = append(resp.Votes, VoteReply{ID: tx.ID, Vote: concord.VoteYes})
	}
	answer, _ := json.Marshal(resp)
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := appendRequest(make([]byte, 0, 512), req); !ok {
			b.Fatal("declined")
		}
		var votes PrepareResponse
		if err := decodeAnswer(answer, &votes, asked{txs: req.Transactions}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareBatchCoordinatorSideJSON is the same with encoding/json.
func BenchmarkPrepareBatchCoordinatorSideJSON(b *testing.B) {
	req := benchPrepareBatch(16)
	resp := PrepareResponse{}
	for _, tx := range req.Transactions {
		resp.Votes = append(resp.Votes, VoteReply{ID: tx.ID, Vote: concord.VoteYes})
	}
	answer, _ := json.Marshal(resp)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(req); err != nil {
			b.Fatal(err)
		}
		var votes PrepareResponse
		if err := json.Unmarshal(answer, &votes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareBatchDecode decodes a batch of 16 PREPAREs as a
// participant's DecodeRequest does (read whole, then the fast path).
func BenchmarkPrepareBatchDecode(b *testing.B) {
	body, _ := json.Marshal(benchPrepareBatch(16))
	b.ReportAllocs()
	for b.Loop() {
		var req PrepareRequest
		if err := decodeRead(bytes.NewReader(body), int64(len(body)), &req, decodePrepareFast); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareBatchDecodeStrict is the same with encoding/json.
func BenchmarkPrepareBatchDecodeStrict(b *testing.B) {
	body, _ := json.Marshal(benchPrepareBatch(16))
	b.ReportAllocs()
	for b.Loop() {
		var req PrepareRequest
		if err := decodeStrict(bytes.NewReader(body), &req); err != nil {
			b.Fatal(err)
		}
	}
}
