package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator/console"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// Errors of authorization, compared with errors.Is.
var (
	// ErrUnauthenticated: the request proved no identity (401).
	ErrUnauthenticated = errors.New("not authenticated")
	// ErrForbidden: the caller may not see or do this (403).
	ErrForbidden = errors.New("forbidden")
)

// ownerOf is the identity a submission made in ctx is recorded under: the
// authenticated principal's name, or "" when the coordinator authenticates
// no one.
func ownerOf(ctx context.Context) string {
	if p, ok := security.PrincipalFrom(ctx); ok {
		return p.Name
	}
	return ""
}

// checkOwner refuses the resubmission, by a client, of an id another
// client submitted: it would otherwise read that transaction's outcome.
func (c *Coordinator) checkOwner(ctx context.Context, id concord.TxID, live *txState, fin *finishedTx) error {
	p, ok := security.PrincipalFrom(ctx)
	if !ok || p.Operator {
		return nil
	}
	owner := ""
	if live != nil {
		owner = live.owner
	} else if fin != nil {
		owner = fin.owner
	}
	if owner != p.Name {
		return fmt.Errorf("%w: %s was submitted by another client", ErrConflict, id)
	}
	return nil
}

// secure wraps the API with authentication and authorization when
// Options.Auth is set. Its routes mirror the API's, so that the id it
// authorizes is the id the handler serves.
func (c *Coordinator) secure(api http.Handler) http.Handler {
	if c.opts.Auth == nil {
		return api
	}
	m := http.NewServeMux()
	open := func(w http.ResponseWriter, r *http.Request) { api.ServeHTTP(w, r) }
	m.HandleFunc(wire.PathHealth, open)
	m.HandleFunc(console.Path, open) // static files; the data they show comes from the API below
	m.HandleFunc(strings.TrimSuffix(console.Path, "/"), open)
	for _, p := range []string{wire.PathMetrics, wire.PathOverview, wire.PathStats} {
		m.HandleFunc(p, c.guard(api, operatorOnly))
	}
	m.HandleFunc(wire.PathTransactions, c.guard(api, anyone)) // a list shows a client its own only
	m.HandleFunc(wire.PathTransactions+"/{id}/outcome", c.guard(api, c.mayAskOutcome))
	m.HandleFunc(wire.PathTransactions+"/{id}/{action}", c.guard(api, c.mayActOn))
	m.HandleFunc(wire.PathTransactions+"/{id}", c.guard(api, c.mayActOn))
	// Anything else (an endpoint added later, an unknown path) is for
	// operators until it is given a rule of its own.
	m.HandleFunc("/", c.guard(api, operatorOnly))
	return m
}

// guard authenticates the request (401 without an identity), applies rule
// (403 when it refuses) and serves the request with its principal in the
// context.
func (c *Coordinator) guard(api http.Handler, rule func(*http.Request, security.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := c.opts.Auth.Authenticate(r)
		if err != nil {
			c.stats.unauthenticated.Add(1)
			w.Header().Set("WWW-Authenticate", `Bearer realm="concord"`)
			wire.WriteError(w, http.StatusUnauthorized, fmt.Sprintf("%v: %v", ErrUnauthenticated, err))
			return
		}
		if err := rule(r, p); err != nil {
			c.stats.forbidden.Add(1)
			wire.WriteError(w, http.StatusForbidden, err.Error())
			return
		}
		api.ServeHTTP(w, r.WithContext(security.WithPrincipal(r.Context(), p)))
	}
}

func anyone(*http.Request, security.Principal) error { return nil }

func operatorOnly(r *http.Request, p security.Principal) error {
	if p.Operator {
		return nil
	}
	return fmt.Errorf("%w: %s is for operators; %s is not one", ErrForbidden, r.URL.Path, p.Name)
}

// mayActOn lets the submitter and operators read and act on a transaction.
// An unknown id passes: the handler answers 404.
func (c *Coordinator) mayActOn(r *http.Request, p security.Principal) error {
	if p.Operator {
		return nil
	}
	id := concord.TxID(r.PathValue("id"))
	owner, _, known := c.ownerAndBranches(id)
	if !known || owner == p.Name {
		return nil
	}
	return fmt.Errorf("%w: transaction %s belongs to another client", ErrForbidden, id)
}

// mayAskOutcome lets a participant ask about the transactions it is a
// branch of, and the submitter and operators about theirs. A transaction
// the coordinator has no record of passes whoever asks: the answer is
// aborted (presumed abort), the same for any id never used, so it tells
// nothing; and a branch of a transaction that never committed must be able
// to learn that it aborted.
func (c *Coordinator) mayAskOutcome(r *http.Request, p security.Principal) error {
	if p.Operator {
		return nil
	}
	id := concord.TxID(r.PathValue("id"))
	owner, branches, known := c.ownerAndBranches(id)
	if !known || owner == p.Name {
		return nil
	}
	if p.Via == security.ViaCertificate && c.known[p.Name] && slices.Contains(branches, p.Name) {
		return nil
	}
	return fmt.Errorf("%w: %s is not a participant of transaction %s", ErrForbidden, p.Name, id)
}

// ownerAndBranches returns who submitted transaction id and its
// participants, and false if the coordinator has no record of it.
func (c *Coordinator) ownerAndBranches(id concord.TxID) (owner string, branches []string, known bool) {
	t, fin, err := c.table.lookup(id)
	if err != nil {
		c.opts.Logf("authorize a request on %s: %v", id, err)
		return "", nil, false
	}
	var st []string
	switch {
	case t != nil:
		t.mu.Lock()
		if t.core != nil {
			for _, b := range t.core.Status().Branches {
				st = append(st, b.Participant)
			}
		}
		t.mu.Unlock()
		return t.owner, st, true
	case fin != nil:
		for _, b := range fin.status.Branches {
			st = append(st, b.Participant)
		}
		return fin.owner, st, true
	}
	return "", nil, false
}

// listFor is ListParticipant as the caller in ctx may see it: everything
// for an operator (or without authentication), a client's own
// transactions otherwise.
func (c *Coordinator) listFor(ctx context.Context, state, participant string, limit int) (wire.TxList, error) {
	p, ok := security.PrincipalFrom(ctx)
	if !ok || p.Operator {
		return c.ListParticipant(state, participant, limit)
	}
	if limit < 1 || limit > MaxListLimit {
		return wire.TxList{}, fmt.Errorf("%w: limit %d is outside 1..%d", ErrBadRequest, limit, MaxListLimit)
	}
	all, err := c.ListParticipant(state, participant, MaxListLimit)
	if err != nil {
		return all, err
	}
	out := all.Transactions[:0]
	for _, t := range all.Transactions {
		if owner, _, known := c.ownerAndBranches(t.ID); known && owner == p.Name {
			out = append(out, t)
			if len(out) == limit {
				break
			}
		}
	}
	all.Transactions = out
	return all, nil
}
