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

// registerOps adds the operator endpoints to the API's mux:
//
//	GET  /metrics                          Prometheus text format
//	GET  /v1/overview                      counters and per-participant health (wire.Overview)
//	GET  /v1/transactions/{id}/timeline    one transaction's event history (wire.TxTimeline)
//	GET  /ui/                              the browser console
func (c *Coordinator) registerOps(mux *http.ServeMux) {
	mux.Handle(wire.PathMetrics, c.MetricsHandler())
	mux.HandleFunc(wire.PathOverview, c.serveOverview)
	mux.HandleFunc(wire.PathTransactions+"/{id}/timeline", c.serveTimeline)
	mux.Handle(console.Path, console.Handler())
	mux.Handle(openapi.Path, openapi.Handler(openapi.Coordinator()))
	mux.Handle(strings.TrimSuffix(console.Path, "/"), http.RedirectHandler(console.Path, http.StatusFound))
}

// MaxLoggedReason bounds how much of an abort reason is logged; the rest
// is cut (the reason kept in the timeline is the caller's, whole).
const MaxLoggedReason = 256

// logAction logs an action on a transaction with who asked (the principal
// in ctx, if any) and counts it; res is what it did. A refusal is logged at
// most a few times a second (an unknown id or another client's
// transaction is anyone's to ask about), the rest counted as suppressed.
func (c *Coordinator) logAction(ctx context.Context, action string, id concord.TxID, res string, err error) {
	result := "done"
	switch {
	case errors.Is(err, ErrDecided):
		result = "refused"
	case errors.Is(err, ErrNotFound):
		result = "not_found"
	case errors.Is(err, ErrForbidden):
		result = "forbidden"
	case err != nil:
		result = "error"
	}
	c.metrics.actions.WithLabelValues(action, result).Inc()
	who, via := "process", ""
	if p, ok := security.PrincipalFrom(ctx); ok {
		who, via = p.Name, p.Via
	}
	if len(res) > MaxLoggedReason {
		res = res[:MaxLoggedReason] + fmt.Sprintf("... (%d bytes)", len(res))
	}
	if err != nil {
		c.refusedLog.log(c.logger, "operator "+action+" refused", "tx", id, "by", who, "via", via, "result", result, "err", err)
		return
	}
	c.logger.Info("operator "+action, "tx", id, "by", who, "via", via, "result", res)
}

func (c *Coordinator) serveTimeline(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	tl, err := c.timeline(r.Context(), concord.TxID(r.PathValue("id")))
	if err != nil {
		writeErr(w, err)
		return
	}
	wire.WriteJSON(w, http.StatusOK, tl)
}

// Overview returns the coordinator's counters and each participant's
// health, for the console. It looks at every live transaction, so it costs
// in proportion to how many are in flight.
func (c *Coordinator) Overview() wire.Overview {
	st := c.Stats()
	o := wire.Overview{Now: c.clock.Now().UTC(), StartedAt: c.startedAt.UTC(), Submitted: st.Submitted,
		Committed: st.Committed, Aborted: st.Aborted, InFlight: st.Live, Remembered: st.Remembered,
		LogSegments: st.Log.Segments, LogSyncs: st.Log.Syncs, Compactions: st.Compactions,
		LogSegmentsRemoved: st.Log.SegmentsRemoved}
	if err := c.Halted(); err != nil {
		o.Halted = err.Error()
	}
	pending := map[string]int{}
	for _, t := range c.table.liveList() {
		if t.result.Load() == nil {
			continue
		}
		o.AwaitingAck++
		t.mu.Lock()
		if t.core != nil && !t.finished {
			for _, b := range t.core.Status().Branches {
				if !b.Acknowledged && b.Vote == concord.VoteYes {
					pending[b.Participant]++
				}
			}
		}
		t.mu.Unlock()
	}
	c.pmetrics.Range(func(k, v any) bool {
		p := v.(*participantMetrics)
		h := wire.ParticipantHealth{Name: k.(string), Requests: p.requests.Load(), Errors: p.failures.Load(),
			ConsecutiveErrors: p.consecutive.Load(), PendingAcks: pending[k.(string)], State: "idle"}
		if n := p.lastOK.Load(); n != 0 {
			h.LastOK = time.Unix(0, n).UTC()
		}
		if n := p.lastErrAt.Load(); n != 0 {
			h.LastErrorAt = time.Unix(0, n).UTC()
		}
		if e := p.lastErr.Load(); e != nil {
			h.LastError = *e
		}
		switch {
		case h.ConsecutiveErrors > 0:
			h.State = "failing"
		case h.Requests > 0:
			h.State = "ok"
		}
		h.Probe = "off"
		if _, ok := c.transport.(Prober); ok && c.opts.ProbeInterval > 0 {
			h.Probe = "waiting"
			at := func(n int64) time.Time {
				if n == 0 {
					return time.Time{}
				}
				return time.Unix(0, n).UTC()
			}
			h.ProbeLastOK, h.ProbeLastErrorAt, h.NextProbe = at(p.probeOK.Load()), at(p.probeErrAt.Load()), at(p.probeNext.Load())
			if e := p.probeErr.Load(); e != nil {
				h.ProbeLastError = *e
			}
			h.ProbeFailures = p.probeFailures.Load()
			switch {
			case h.ProbeFailures > 0:
				h.Probe = "failing"
			case !h.ProbeLastOK.IsZero():
				h.Probe = "ok"
			}
		}
		o.Participants = append(o.Participants, h)
		return true
	})
	slices.SortFunc(o.Participants, func(a, b wire.ParticipantHealth) int { return strings.Compare(a.Name, b.Name) })
	if o.Participants == nil {
		o.Participants = []wire.ParticipantHealth{}
	}
	return o
}

func (c *Coordinator) serveOverview(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		wire.MethodNotAllowed(w, r, http.MethodGet)
		return
	}
	wire.WriteJSON(w, http.StatusOK, c.Overview())
}

// ListParticipant is List restricted to transactions with a branch at
// participant ("" for any).
func (c *Coordinator) ListParticipant(state, participant string, limit int) (wire.TxList, error) {
	return c.list(state, listFilter{participant: participant}, limit)
}

// discardLogger is the logger of a coordinator given none.
var discardLogger = slog.New(slog.DiscardHandler)

// retryNote says to whom an operator retry resent the decision.
func retryNote(to []string) string {
	if len(to) == 0 {
		return "nothing to resend: no decision yet, or every participant has acknowledged"
	}
	return "decision resent now to " + strings.Join(to, ", ")
}
