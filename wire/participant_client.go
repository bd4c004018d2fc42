package wire

import (
	"context"
	"net/http"
	"strings"

	"github.com/concordtx/concord"
)

// ParticipantClient sends the participant protocol's requests to one
// participant over HTTP.
type ParticipantClient struct {
	// BaseURL is the participant's address, e.g. http://127.0.0.1:7071.
	BaseURL string
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client
}

func (p *ParticipantClient) client() *http.Client {
	if p.HTTP == nil {
		return http.DefaultClient
	}
	return p.HTTP
}

func (p *ParticipantClient) url(path string) string {
	return strings.TrimRight(p.BaseURL, "/") + path
}

// Prepare POSTs req to the participant's PathPrepare.
func (p *ParticipantClient) Prepare(ctx context.Context, req PrepareRequest) (PrepareResponse, error) {
	var resp PrepareResponse
	err := Do(ctx, p.client(), http.MethodPost, p.url(PathPrepare), req, &resp)
	return resp, err
}

// Commit POSTs ids to the participant's PathCommit.
func (p *ParticipantClient) Commit(ctx context.Context, ids []concord.TxID) (DecisionResponse, error) {
	return p.CommitRequest(ctx, DecisionRequest{IDs: ids})
}

// Abort POSTs ids to the participant's PathAbort.
func (p *ParticipantClient) Abort(ctx context.Context, ids []concord.TxID) (DecisionResponse, error) {
	return p.AbortRequest(ctx, DecisionRequest{IDs: ids})
}

// CommitRequest POSTs req to the participant's PathCommit.
func (p *ParticipantClient) CommitRequest(ctx context.Context, req DecisionRequest) (DecisionResponse, error) {
	var resp DecisionResponse
	err := Do(ctx, p.client(), http.MethodPost, p.url(PathCommit), req, &resp)
	return resp, err
}

// AbortRequest POSTs req to the participant's PathAbort.
func (p *ParticipantClient) AbortRequest(ctx context.Context, req DecisionRequest) (DecisionResponse, error) {
	var resp DecisionResponse
	err := Do(ctx, p.client(), http.MethodPost, p.url(PathAbort), req, &resp)
	return resp, err
}
