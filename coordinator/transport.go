package coordinator

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sync"

	"github.com/concordtx/concord/wire"
)

// ErrUnknownParticipant is returned for a participant name the coordinator
// has no address for.
var ErrUnknownParticipant = errors.New("unknown participant")

// Transport carries the participant protocol's requests to participants by
// name. The coordinator batches messages above it; one call is one request.
// A COMMIT or ABORT request carries each transaction's deadline
// (wire.DecisionRequest.DeadlinesMS) when the coordinator knows it.
// Implementations must be safe for concurrent use.
type Transport interface {
	Prepare(ctx context.Context, participant string, req wire.PrepareRequest) (wire.PrepareResponse, error)
	Commit(ctx context.Context, participant string, req wire.DecisionRequest) (wire.DecisionResponse, error)
	Abort(ctx context.Context, participant string, req wire.DecisionRequest) (wire.DecisionResponse, error)
}

// HTTPTransport is the Transport over HTTP to a fixed set of participants.
type HTTPTransport struct {
	clients map[string]participantClient
	urls    map[string]string // base URLs, for the health probes

	probeOnce sync.Once
	probeHTTP *http.Client // probes of participants on a DirectClient
}

// participantClient is wire.ParticipantClient or wire.DirectClient.
type participantClient interface {
	Prepare(ctx context.Context, req wire.PrepareRequest) (wire.PrepareResponse, error)
	CommitRequest(ctx context.Context, req wire.DecisionRequest) (wire.DecisionResponse, error)
	AbortRequest(ctx context.Context, req wire.DecisionRequest) (wire.DecisionResponse, error)
}

var _ Transport = (*HTTPTransport)(nil)

// NewHTTPTransport returns a transport to the participants named in urls
// (name to base URL), over hc. With hc nil, an http:// participant is
// reached through a wire.DirectClient (keep-alive connections, each request
// bounded by its context) and any other through a keep-alive client from
// wire.NewHTTPClient with no overall timeout.
func NewHTTPTransport(urls map[string]string, hc *http.Client) *HTTPTransport {
	t := &HTTPTransport{clients: make(map[string]participantClient, len(urls)), urls: maps.Clone(urls)}
	var shared *http.Client
	for name, u := range urls {
		if hc == nil {
			if dc, err := wire.NewDirectClient(u); err == nil {
				t.clients[name] = dc
				continue
			}
			if shared == nil {
				shared = wire.NewHTTPClient(0)
			}
			t.clients[name] = &wire.ParticipantClient{BaseURL: u, HTTP: shared}
			continue
		}
		t.clients[name] = &wire.ParticipantClient{BaseURL: u, HTTP: hc}
	}
	return t
}

// CloseIdleConnections closes the connections to participants that no
// request is using.
func (t *HTTPTransport) CloseIdleConnections() {
	for _, c := range t.clients {
		switch c := c.(type) {
		case *wire.DirectClient:
			c.CloseIdleConnections()
		case *wire.ParticipantClient:
			if c.HTTP != nil {
				c.HTTP.CloseIdleConnections()
			}
		}
	}
}

func (t *HTTPTransport) client(name string) (participantClient, error) {
	c, ok := t.clients[name]
	if !ok {
		return nil, fmt.Errorf("%w %q: not configured", ErrUnknownParticipant, name)
	}
	return c, nil
}

// Prepare sends a batch of PREPAREs.
func (t *HTTPTransport) Prepare(ctx context.Context, participant string, req wire.PrepareRequest) (wire.PrepareResponse, error) {
	c, err := t.client(participant)
	if err != nil {
		return wire.PrepareResponse{}, err
	}
	return c.Prepare(ctx, req)
}

// Commit sends a batch of COMMITs.
func (t *HTTPTransport) Commit(ctx context.Context, participant string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	c, err := t.client(participant)
	if err != nil {
		return wire.DecisionResponse{}, err
	}
	return c.CommitRequest(ctx, req)
}

// Abort sends a batch of ABORTs.
func (t *HTTPTransport) Abort(ctx context.Context, participant string, req wire.DecisionRequest) (wire.DecisionResponse, error) {
	c, err := t.client(participant)
	if err != nil {
		return wire.DecisionResponse{}, err
	}
	return c.AbortRequest(ctx, req)
}
