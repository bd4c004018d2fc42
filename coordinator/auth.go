package coordinator

import (
	"context"
	"errors"
	"fmt"
	"github.com/concordtx/concord/openapi"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

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

// secure wraps the API with authentication when Options.Auth is set. A
// route rule here decides only what needs no transaction (operator-only
// endpoints); whether the caller may see or act on a transaction is decided
// by the handler on the object it looks up, under that object's lock (see
// authorize), so that a transaction that appears between a check and its
// use is never acted on by another client.
func (c *Coordinator) secure(api http.Handler) http.Handler {
	if c.opts.Auth == nil {
		return api
	}
	m := http.NewServeMux()
	open := func(w http.ResponseWriter, r *http.Request) { api.ServeHTTP(w, r) }
	m.HandleFunc(wire.PathHealth, open)
	m.HandleFunc(openapi.Path, open) // the API's description: no secret
	m.HandleFunc(console.Path, open) // static files; the data they show comes from the API below
	m.HandleFunc(strings.TrimSuffix(console.Path, "/"), open)
	for _, p := range []string{wire.PathMetrics, wire.PathOverview, wire.PathStats} {
		m.HandleFunc(p, c.guard(api, operatorOnly))
	}
	m.HandleFunc(wire.PathTransactions, c.guard(api, anyone)) // a list shows a client its own only
	m.HandleFunc(wire.PathTransactions+"/{id}/outcome", c.guard(api, anyone))
	m.HandleFunc(wire.PathTransactions+"/{id}/{action}", c.guard(api, anyone))
	m.HandleFunc(wire.PathTransactions+"/{id}", c.guard(api, anyone))
	// Anything else (an endpoint added later, an unknown path) is for
	// operators until it is given a rule of its own.
	m.HandleFunc("/", c.guard(api, operatorOnly))
	return m
}

// guard authenticates the request (401 without an identity), applies rule
// (403 when it refuses) and serves the request with its principal in the
// context. A refused request closes its connection and is logged
// (rate-limited).
func (c *Coordinator) guard(api http.Handler, rule func(*http.Request, security.Principal) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := c.opts.Auth.Authenticate(r)
		if err != nil {
			c.stats.unauthenticated.Add(1)
			c.refusedLog.log(c.logger, "request not authenticated", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "err", err)
			w.Header().Set("WWW-Authenticate", `Bearer realm="concord"`)
			w.Header().Set("Connection", "close")
			wire.WriteError(w, http.StatusUnauthorized, fmt.Sprintf("%v: %v", ErrUnauthenticated, err))
			return
		}
		if err := rule(r, p); err != nil {
			c.refuse(w, r, p, err)
			return
		}
		if c.afterGuard != nil {
			c.afterGuard(r)
		}
		markAuthenticated(r.Context())
		if c.opts.ReadTimeout > 0 {
			// The read deadline was set while the connection was not yet
			// known to authenticate (UnauthIdleTimeout): give the body the
			// ordinary time.
			http.NewResponseController(w).SetReadDeadline(time.Now().Add(c.opts.ReadTimeout))
		}
		api.ServeHTTP(w, r.WithContext(security.WithPrincipal(r.Context(), p)))
	}
}

// refuse answers 403 for err, closes the connection and logs who was
// refused what (rate-limited).
func (c *Coordinator) refuse(w http.ResponseWriter, r *http.Request, p security.Principal, err error) {
	c.stats.forbidden.Add(1)
	c.refusedLog.log(c.logger, "request forbidden", "remote", r.RemoteAddr, "principal", p.Name, "via", p.Via,
		"method", r.Method, "path", r.URL.Path, "err", err)
	w.Header().Set("Connection", "close")
	wire.WriteError(w, http.StatusForbidden, err.Error())
}

func anyone(*http.Request, security.Principal) error { return nil }

func operatorOnly(r *http.Request, p security.Principal) error {
	if p.Operator {
		return nil
	}
	return fmt.Errorf("%w: %s is for operators; %s is not one", ErrForbidden, r.URL.Path, p.Name)
}

// authorize lets the submitter (owner) of transaction id and operators see
// and act on it; without a principal in ctx (no authentication, or a call
// from the process itself) everyone may. It is called with the object the
// action uses, under its lock where it has one.
// A refusal is counted and logged (rate-limited) with who asked.
func (c *Coordinator) authorize(ctx context.Context, id concord.TxID, owner string) error {
	p, ok := security.PrincipalFrom(ctx)
	if !ok || p.Operator || owner == p.Name {
		return nil
	}
	c.stats.forbidden.Add(1)
	c.refusedLog.log(c.logger, "transaction forbidden", "tx", id, "principal", p.Name, "via", p.Via)
	return fmt.Errorf("%w: transaction %s belongs to another client", ErrForbidden, id)
}

// authorizeOutcome is authorize for outcome queries, which a participant may
// also make about the transactions it is a branch of (branches): with a
// certificate in the participant role naming a configured participant.
// A transaction the coordinator has no record of is answered to whoever
// asks (see Coordinator.outcome): the answer is aborted (presumed abort),
// the same for any id never used, so it tells nothing; and a branch of a
// transaction that never committed must be able to learn that it aborted.
func (c *Coordinator) authorizeOutcome(ctx context.Context, id concord.TxID, owner string, branches func() []string) error {
	p, ok := security.PrincipalFrom(ctx)
	if !ok || p.Operator || owner == p.Name {
		return nil
	}
	if p.Via == security.ViaCertificate && p.Role == security.RoleParticipant && c.known[p.Name] && slices.Contains(branches(), p.Name) {
		return nil
	}
	c.stats.forbidden.Add(1)
	c.refusedLog.log(c.logger, "outcome query forbidden", "tx", id, "principal", p.Name, "via", p.Via, "role", p.Role)
	return fmt.Errorf("%w: %s is not a participant of transaction %s", ErrForbidden, p.Name, id)
}

// listOwner is the owner a list made in ctx is restricted to, and whether
// it is restricted: everything for an operator (or without
// authentication), a client's own transactions otherwise.
func listOwner(ctx context.Context) (string, bool) {
	p, ok := security.PrincipalFrom(ctx)
	if !ok || p.Operator {
		return "", false
	}
	return p.Name, true
}

// listFor is ListParticipant as the caller in ctx may see it (listOwner).
func (c *Coordinator) listFor(ctx context.Context, state, participant string, limit int) (wire.TxList, error) {
	owner, byOwner := listOwner(ctx)
	return c.list(state, listFilter{participant: participant, owner: owner, byOwner: byOwner}, limit)
}

// refusedLogger logs refusals at Warn level, at most a few a second (see
// security.LogLimiter): any client can cause them.
type refusedLogger struct{ lim security.LogLimiter }

func (r *refusedLogger) log(logger *slog.Logger, msg string, args ...any) {
	r.lim.Warn(logger, msg, args...)
}

// markAuthenticated tells the connection of ctx that a request on it has
// authenticated, so that it keeps the ordinary idle timeout.
func markAuthenticated(ctx context.Context) { security.MarkAuthenticated(ctx) }
