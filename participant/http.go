package participant

import (
	"context"
	"errors"
	"github.com/concordtx/concord/openapi"
	"net/http"
	"time"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// Handler serves the participant protocol: POST wire.PathPrepare,
// wire.PathCommit and wire.PathAbort, and its OpenAPI description at GET
// openapi.Path (/openapi.json). Bodies are decoded strictly (by
// wire.DecodeRequest, which reads the coordinator's plain form directly): malformed
// JSON or unknown fields 400, a body past Options.MaxBodyBytes 413, another
// method 405, a bad id or an empty batch 400 naming the problem, 503 before
// Start or after Close. With Options.CoordinatorIdentity, a request not from
// a verified client certificate of that identity in the coordinator role is
// 401 or 403. A POST must be Content-Type: application/json (415), a
// cross-origin browser one is 403 (security.Protect).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.PathPrepare, s.handlePrepare)
	mux.HandleFunc(wire.PathCommit, func(w http.ResponseWriter, r *http.Request) { s.handleDecision(w, r, true) })
	mux.HandleFunc(wire.PathAbort, func(w http.ResponseWriter, r *http.Request) { s.handleDecision(w, r, false) })
	mux.Handle(openapi.Path, openapi.Handler(openapi.Participant()))
	return security.Protect(s.requireCoordinator(mux))
}

func (s *Server) handlePrepare(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		wire.MethodNotAllowed(w, r, http.MethodPost)
		return
	}
	var req wire.PrepareRequest
	if !s.decode(w, r, &req) {
		return
	}
	start := time.Now()
	resp, err := s.Prepare(r.Context(), req)
	s.metrics.request(reqPrepare, start, len(req.Transactions))
	if err != nil {
		s.writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) handleDecision(w http.ResponseWriter, r *http.Request, commit bool) {
	if r.Method != http.MethodPost {
		wire.MethodNotAllowed(w, r, http.MethodPost)
		return
	}
	var req wire.DecisionRequest
	if !s.decode(w, r, &req) {
		return
	}
	var resp wire.DecisionResponse
	var err error
	start := time.Now()
	if commit {
		resp, err = s.CommitRequest(r.Context(), req)
		s.metrics.request(reqCommit, start, len(req.IDs))
	} else {
		resp, err = s.AbortRequest(r.Context(), req)
		s.metrics.request(reqAbort, start, len(req.IDs))
	}
	if err != nil {
		s.writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, resp)
}

func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if !security.RequireJSON(w, r) {
		return false
	}
	err := wire.DecodeRequest(w, r, s.opts.MaxBodyBytes, v)
	if err == nil {
		return true
	}
	s.refuseBody(w, err)
	return false
}

// refuseBody answers a body that cannot be decoded: 413 for one too
// large, else 400.
func (s *Server) refuseBody(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, wire.ErrBodyTooLarge):
		wire.WriteError(w, http.StatusRequestEntityTooLarge, err.Error())
	default:
		wire.WriteError(w, http.StatusBadRequest, err.Error())
	}
}

func (s *Server) writeErr(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, ErrBadRequest):
		wire.WriteError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotStarted), errors.Is(err, ErrClosed):
		wire.WriteError(w, http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The caller went away; the work goes on and a retry is answered
		// from the same state.
		wire.WriteError(w, http.StatusServiceUnavailable, "request ended before the answer: "+err.Error())
	default:
		wire.WriteError(w, http.StatusInternalServerError, err.Error())
	}
}
