package coordinator

import (
	"context"
	"log/slog"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wire"
)

// Structured logs and trace context. A decision and an END are logged at
// Debug (at Info they would be a line per transaction); what an operator
// needs to know is logged at Info or Warn: a decision that could not be
// delivered (the first failure of each transaction and participant), a
// transaction finished after retries, a participant that starts failing or
// answers again, operator actions.
//
// Trace context: a client's W3C traceparent header is kept with its
// transaction and sent with the requests to participants that carry it. A
// request batches several transactions but has one header, so it carries
// the traceparent of the first transaction of the batch (in request order)
// that has one; every transaction's own traceparent stays readable in its
// timeline.

// finishedLocked keeps t's history once it leaves the table. t.mu is held.
func (c *Coordinator) finishedLocked(t *txState, st tpc.Status) {
	c.timelines.keep(t.id, &finishedTimeline{hist: t.hist, traceparent: t.traceparent})
	retried := false
	for _, b := range st.Branches {
		if b.Attempts > 1 {
			retried = true
		}
	}
	if retried {
		c.logger.Info("transaction finished after retries: every participant has the outcome",
			"tx", t.id, "outcome", st.Outcome.String())
	} else if c.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.logger.Debug("transaction finished", "tx", t.id, "outcome", st.Outcome.String())
	}
}

// logDecision logs a reported outcome at Debug.
func (c *Coordinator) logDecision(t *txState, o concord.Outcome, reason string) {
	if !c.logger.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	c.logger.Debug("transaction decided", "tx", t.id, "outcome", o.String(), "reason", reason)
}

// logDeliveryFailed logs a decision not delivered: at Warn the first time
// for t and participant, at Debug after. t.mu is held.
func (c *Coordinator) logDeliveryFailed(t *txState, participant, reason string) {
	n := 0 // failures noted for participant, the one just noted included
	for _, e := range t.hist.events {
		if e.kind == evDeliveryFailed && e.participant == participant {
			n++
		}
	}
	if n <= 1 {
		c.logger.Warn("decision not delivered; retrying with backoff until acknowledged",
			"tx", t.id, "participant", participant, "err", reason)
		return
	}
	if c.logger.Enabled(context.Background(), slog.LevelDebug) {
		c.logger.Debug("decision not delivered again", "tx", t.id, "participant", participant, "failures", n, "err", reason)
	}
}

// health logs a participant's change between answering and failing.
func (p *participantMetrics) health(failedBefore int64, err error) {
	switch {
	case err != nil && failedBefore == 0:
		p.logger.Warn("participant failing", "participant", p.name, "err", err)
	case err == nil && failedBefore > 0:
		p.logger.Info("participant answering again", "participant", p.name, "failed_requests", failedBefore)
	}
}

// withTrace returns ctx carrying the traceparent of the first transaction
// of the batch that has one.
func withTrace(ctx context.Context, txs []*txState) context.Context {
	for _, t := range txs {
		if t.traceparent != "" {
			return wire.WithTraceparent(ctx, t.traceparent)
		}
	}
	return ctx
}
