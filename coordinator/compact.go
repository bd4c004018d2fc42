package coordinator

import (
	"fmt"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
)

// Compaction keeps the log bounded. Every live transaction carries (a lower
// bound on) the sequence number of its oldest record; every record before
// the smallest of them belongs to finished transactions and may go, and
// wal.Compact deletes the segments that hold only such records. A
// transaction live for longer than RefreshAfter (a commit that a
// participant does not acknowledge) would pin the log from its first record
// on; so its state is appended anew (a RecCommit with every vote, or the
// RecBegin of a one-phase transaction being resolved, each with its request
// record), synced, and its oldest record moves up to that copy. Recovery
// reads the newest copy, since tpc.Recover rebuilds a committed transaction
// from its RecCommit alone.

// armCompaction schedules the next compaction pass.
func (c *Coordinator) armCompaction() {
	c.compactMu.Lock()
	defer c.compactMu.Unlock()
	if c.stopped() {
		return
	}
	c.compactTimer = c.clock.AfterFunc(c.opts.CompactInterval, func() {
		if err := c.Compact(); err != nil {
			c.opts.Logf("compaction: %v", err)
		}
		c.armCompaction()
	})
}

// Compact rewrites long-lived transactions and deletes the log segments
// that hold only records of finished ones. It runs every CompactInterval;
// tests and operators may call it at any time.
func (c *Coordinator) Compact() error {
	if err := c.unavailable(); err != nil {
		return err
	}
	now := c.clock.Now()
	var stale []*txState
	c.table.forEachLive(func(t *txState) {
		if now.Sub(time.Unix(0, t.written.Load())) >= c.opts.RefreshAfter {
			stale = append(stale, t)
		}
	})
	for _, t := range stale {
		if err := c.refresh(t, now); err != nil {
			return err
		}
	}
	before := c.log.LastSeq() + 1 // any record appended from now on is after this
	c.table.forEachLive(func(t *txState) {
		if s := t.firstSeq.Load(); s != 0 && s < before {
			before = s
		}
	})
	// Every transaction that finished before the scan above is in the
	// remembered set's batch (table.finish adds it there before taking it
	// out of the live table): written out now, so that the records deleted
	// below are no longer its only copy.
	if err := c.table.store.flush(); err != nil {
		return fmt.Errorf("before compaction: %w", err)
	}
	if before <= c.log.FirstSeq() {
		return nil
	}
	// What made the older records unneeded (an END, an ABORT) is appended
	// without a sync; it must be durable before they are deleted, or a
	// crash would leave neither (a one-phase commit would come back
	// unknown, and so presumed aborted).
	if err := c.log.Sync(); err != nil {
		c.halt(fmt.Errorf("sync the log: %w", err))
		return err
	}
	if err := c.log.Compact(before); err != nil {
		return fmt.Errorf("compact log before record %d: %w", before, err)
	}
	c.stats.compactions.Add(1)
	return nil
}

// refresh appends t's state anew so that its older records can be deleted.
func (c *Coordinator) refresh(t *txState, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.finished || t.core == nil || c.stopped() {
		return nil
	}
	st := t.core.Status()
	rec := tpc.Record{TxID: t.id, Participants: make([]string, len(st.Branches))}
	for i, b := range st.Branches {
		rec.Participants[i] = b.Participant
	}
	switch {
	case t.result.Load() != nil && st.Outcome == concord.OutcomeCommitted:
		rec.Type, rec.Outcome = tpc.RecCommit, concord.OutcomeCommitted
		rec.Votes = make([]concord.Vote, len(st.Branches))
		for i, b := range st.Branches {
			rec.Votes[i] = b.Vote
		}
	case st.Outcome == concord.OutcomePending && st.OnePhase && st.Deadline.IsZero() || st.Outcome == concord.OutcomePending && st.OnePhase && !now.Before(st.Deadline):
		rec.Type, rec.OnePhase = tpc.RecBegin, true
	default:
		return nil // preparing: its deadline ends it soon
	}
	entries, err := encodeRecords(nil, t, t.digest != (digest{}), []tpc.Record{rec})
	if err != nil {
		return err
	}
	first, err := c.appendEntries(entries, true)
	if err != nil {
		c.halt(fmt.Errorf("append to the log: %w", err))
		return err
	}
	t.firstSeq.Store(first)
	t.written.Store(now.UnixNano())
	c.stats.refreshed.Add(1)
	return nil
}
