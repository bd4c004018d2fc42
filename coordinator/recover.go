package coordinator

import (
	"fmt"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/wal"
)

// resumed is a recovered transaction and the Ready that resumes it.
type resumed struct {
	tx    *txState
	ready tpc.Ready
}

// recover replays the log into the table. It returns the Readies to
// perform; New performs them before the coordinator serves anyone.
func (c *Coordinator) recover() ([]resumed, error) {
	var records []tpc.Record
	digests := make(map[concord.TxID]digest)
	legacy := make(map[concord.TxID]bool)
	owners := make(map[concord.TxID]string)
	first := make(map[concord.TxID]uint64)
	note := func(id concord.TxID, seq uint64) {
		if _, ok := first[id]; !ok {
			first[id] = seq
		}
	}
	err := c.log.Replay(0, func(r wal.Record) error {
		switch {
		case r.Type == entryRequest:
			id, d, owner, old, err := decodeRequest(r.Payload)
			if err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrBadLogEntry, r.Seq, err)
			}
			digests[id] = d
			legacy[id] = old
			if owner != "" {
				owners[id] = owner
			}
			note(id, r.Seq)
		case r.Type >= uint8(tpc.RecBegin) && r.Type <= uint8(tpc.RecEnd):
			var rec tpc.Record
			if err := rec.UnmarshalBinary(r.Payload); err != nil {
				return fmt.Errorf("%w: record %d: %v", ErrBadLogEntry, r.Seq, err)
			}
			if uint8(rec.Type) != r.Type {
				return fmt.Errorf("%w: record %d: entry type %d holds a %v record", ErrBadLogEntry, r.Seq, r.Type, rec.Type)
			}
			records = append(records, rec)
			note(rec.TxID, r.Seq)
		default:
			return fmt.Errorf("%w: record %d has unknown type %d", ErrBadLogEntry, r.Seq, r.Type)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("replay coordinator log in %s: %w", c.opts.Dir, err)
	}
	now := c.clock.Now()
	live, finished := tpc.Recover(c.cfg, records, now)
	for _, st := range finished {
		// Compaction deletes a finished transaction's first records only
		// once the remembered set holds it whole, so what the set holds
		// stands. What it lacks finished before the last crash and was not
		// yet written there: it is added now, its window starting now. A
		// transaction with no branches left (only its END survived
		// compaction) is not in the set only because the window has
		// passed: it stays forgotten.
		f, err := c.table.store.getAny(st.TxID)
		if err != nil {
			return nil, fmt.Errorf("recover %s: %w", st.TxID, err)
		}
		if f != nil || len(st.Branches) == 0 {
			continue
		}
		c.table.remember(&finishedTx{status: st, digest: digests[st.TxID], legacy: legacy[st.TxID], owner: owners[st.TxID], finished: now.UnixNano()})
	}
	out := make([]resumed, 0, len(live))
	for _, r := range live {
		id := r.Tx.ID()
		// Whether the client chose the id is not in the log: remembered as
		// if it did.
		t := &txState{id: id, digest: digests[id], legacy: legacy[id], owner: owners[id], done: make(chan struct{}), core: r.Tx, chosen: true}
		t.firstSeq.Store(first[id])
		t.written.Store(now.UnixNano())
		t.noteLocked(now, evRecovered, "", noValue, "recovered from the log at a restart; resuming")
		if c.known != nil {
			for _, b := range r.Tx.Status().Branches {
				if !c.known[b.Participant] {
					c.opts.Logf("transaction %s names participant %q, which is not configured: its messages fail until it is", id, b.Participant)
				}
			}
		}
		if old := c.table.admit(t); old != nil {
			return nil, fmt.Errorf("%w: transaction %s recovered twice", ErrBadLogEntry, id)
		}
		out = append(out, resumed{tx: t, ready: r.Ready})
	}
	if len(records) > 0 {
		c.opts.Logf("recovered %d log records: %d transactions to finish, %d finished", len(records), len(live), len(finished))
	}
	return out, nil
}
