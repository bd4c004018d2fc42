package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// Handler returns the coordinator's HTTP API:
//
//	POST /v1/transactions                 submit a transaction, answered with its outcome
//	GET  /v1/transactions?state=&limit=   list transactions (state pending by default)
//	GET  /v1/transactions/{id}            one transaction's state, votes and acknowledgements
//	GET  /v1/transactions/{id}/outcome    committed, aborted or pending, for participants in doubt
//	POST /v1/transactions/{id}/retry      operator: resend the decision now to whoever has not acknowledged
//	POST /v1/transactions/{id}/abort      operator: abort a transaction not yet decided (409 once decided)
//	GET  /v1/stats                        counters and runtime figures as JSON (StatsResponse)
//	GET  /healthz                         200 while the coordinator works
//	GET  /openapi.json                    this API's OpenAPI 3.1 description (package openapi)
//
// Every answer is JSON; errors are a wire.ErrorResponse naming the problem.
// Every POST must be Content-Type: application/json (415 otherwise,
// security.RequireJSON) and a cross-origin browser POST is refused 403
// (security.Protect). With
// Options.Auth, requests authenticate and are authorized first (see
// secure): 401 without credentials, 403 for what is not the caller's.
func (c *Coordinator) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc(wire.PathTransactions, c.serveTransactions)
	mux.HandleFunc(wire.PathTransactions+"/{id}", c.serveTransaction)
	mux.HandleFunc(wire.PathTransactions+"/{id}/outcome", c.serveOutcome)
	mux.HandleFunc(wire.PathTransactions+"/{id}/retry", c.serveRetry)
	mux.HandleFunc(wire.PathTransactions+"/{id}/abort", c.serveAbort)
	mux.HandleFunc(wire.PathStats, c.serveStats)
	mux.HandleFunc(wire.PathHealth, c.serveHealth)
	c.registerOps(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		wire.WriteError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	return security.Protect(cleanPaths(c.secure(mux)))
}

// cleanPaths answers 400 to a request whose path has an empty, "." or ".."
// segment (escaped or not), which ServeMux would otherwise redirect to
// another path: GET /v1/transactions/./outcome to the status of the
// transaction "outcome", /v1/transactions//outcome likewise. No route has
// such a segment, and no valid id is one (concord.ValidateTxID).
func cleanPaths(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/") && p != "/" && path.Clean(p) != strings.TrimSuffix(p, "/") {
			wire.WriteError(w, http.StatusBadRequest, fmt.Sprintf("path %q has an empty, \".\" or \"..\" segment: "+
				"no route has one, and a transaction id made only of dots is not valid", p))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (c *Coordinator) serveTransactions(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodPost:
		c.serveSubmit(w, r)
	case http.MethodGet, http.MethodHead:
		c.serveList(w, r)
	default:
		wire.MethodNotAllowed(w, r, http.MethodGet, http.MethodPost)
	}
}

func (c *Coordinator) serveSubmit(w http.ResponseWriter, r *http.Request) {
	if !security.RequireJSON(w, r) {
		return
	}
	var req wire.SubmitRequest
	if err := wire.DecodeRequest(w, r, c.opts.MaxBodyBytes, &req); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, wire.ErrBodyTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		wire.WriteError(w, status, err.Error())
		return
	}
	ctx := r.Context()
	if tp := r.Header.Get(wire.HeaderTraceparent); tp != "" {
		ctx = wire.WithTraceparent(ctx, tp) // passed on to the participants' requests
	}
	resp, err := c.submit(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return // the client left; the transaction goes on
		}
		writeErr(w, err)
		return
	}
	status := http.StatusOK
	if resp.Outcome == concord.OutcomePending {
		status = http.StatusAccepted
	}
	wire.WriteJSON(w, status, resp) // by pointer: no copy of the response
}

func (c *Coordinator) serveList(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		state = ListPending
	}
	limit := 100
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			wire.WriteError(w, http.StatusBadRequest, "limit "+strconv.Quote(s)+" is not a number")
			return
		}
		limit = n
	}
	list, err := c.listFor(r.Context(), state, q.Get("participant"), limit)
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, list)
}

func (c *Coordinator) serveTransaction(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	st, err := c.status(r.Context(), concord.TxID(r.PathValue("id")))
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, st)
}

func (c *Coordinator) serveOutcome(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	id := concord.TxID(r.PathValue("id"))
	o, forgotten, err := c.outcome(r.Context(), id)
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, wire.OutcomeResponse{ID: id, Outcome: o, Forgotten: forgotten})
}

func (c *Coordinator) serveRetry(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		wire.MethodNotAllowed(w, r, http.MethodPost)
		return
	}
	if !security.RequireJSON(w, r) {
		return
	}
	st, err := c.retryNow(r.Context(), concord.TxID(r.PathValue("id")))
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, st)
}

func (c *Coordinator) serveAbort(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		wire.MethodNotAllowed(w, r, http.MethodPost)
		return
	}
	if !security.RequireJSON(w, r) {
		return
	}
	reason := "requested over the HTTP API"
	if r.ContentLength != 0 {
		var req wire.ActionRequest
		if err := wire.DecodeRequest(w, r, 64<<10, &req); err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, wire.ErrBodyTooLarge) {
				status = http.StatusRequestEntityTooLarge
			}
			wire.WriteError(w, status, err.Error())
			return
		}
		if req.Reason != "" {
			reason = req.Reason
		}
	}
	st, err := c.abort(r.Context(), concord.TxID(r.PathValue("id")), reason)
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, st)
}

func (c *Coordinator) serveHealth(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	if err := c.unavailable(); err != nil {
		wire.WriteError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	live, _ := c.table.counts()
	wire.WriteJSON(w, http.StatusOK, map[string]any{"status": "ok", "live": live})
}

// writeErr maps the API's errors to status codes.
func writeErr(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrBadRequest):
		status = http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		status = http.StatusNotFound
	case errors.Is(err, ErrConflict), errors.Is(err, ErrDecided):
		status = http.StatusConflict
	case errors.Is(err, ErrOverloaded):
		status = http.StatusServiceUnavailable
		w.Header().Set("Retry-After", "1")
	case errors.Is(err, ErrUnavailable):
		status = http.StatusServiceUnavailable
	case errors.Is(err, ErrForbidden):
		status = http.StatusForbidden
		w.Header().Set("Connection", "close")
	case errors.Is(err, ErrUnauthenticated):
		status = http.StatusUnauthorized
		w.Header().Set("Connection", "close")
	}
	if errors.Is(err, ErrForgotten) {
		wire.WriteJSON(w, status, wire.ErrorResponse{Error: err.Error(), State: wire.StateForgotten})
		return
	}
	wire.WriteError(w, status, err.Error())
}
