package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal"
)

// readOnlyPayload is the branch payload of a participant that only reads:
// it votes read-only and holds nothing.
var readOnlyPayload = json.RawMessage(`{"query":"availability"}`)

func isReadOnlyPayload(p json.RawMessage) bool { return bytes.Equal(p, readOnlyPayload) }

// Store log record types.
const (
	storePrepared  uint8 = iota + 1 // forced before a yes vote
	storeCommitted                  // forced before a commit is acknowledged
	storeAborted                    // not forced (presumed abort)
	storeOnePhase                   // a one-phase commit: the work and the commit in one forced record
)

// storeRecord is the payload of one store log record.
type storeRecord struct {
	ID      concord.TxID    `json:"id"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// simStore is the simulator's own participant resource: the travel inventory's
// domain logic made durable on a wal over the node's crash-simulating disk,
// with the discipline of participant/filestore: the prepared record (with
// its payload) is synced before a yes vote, the commit record before a
// commit returns, the abort of a prepared transaction is written unforced, a
// one-phase commit is one synced record, and aborted ids are remembered so
// that a late prepare is refused; an abort that arrives before its prepare
// and a one-phase refusal are synced (see Abort and CommitOnePhase).
type simStore struct {
	log     *wal.Log
	inv     *travel.Inventory
	aborted map[concord.TxID]bool // aborted with nothing held here: refused if prepared later
	// crash is called at named points between a write and its sync, and
	// after a sync; true means the process died there.
	crash func(point string) bool
	// unforced turns off the sync of prepared and commit records: a
	// deliberately broken store (Bugs.UnforcedStore).
	unforced bool
}

var _ resource = (*simStore)(nil)

// openSimStore opens (or recovers) a store in dir on fsys, replaying its log
// into a fresh inventory.
func openSimStore(fsys wal.FS, dir string, stock []travel.Stock) (*simStore, error) {
	inv, err := travel.NewInventory(stock)
	if err != nil {
		return nil, err
	}
	l, err := wal.Open(wal.Options{Dir: dir, FS: fsys, SegmentSize: 4 << 10, IdleMark: -1, Logger: discardLogger})
	if err != nil {
		return nil, fmt.Errorf("open store log: %w", err)
	}
	s := &simStore{log: l, inv: inv, aborted: make(map[concord.TxID]bool), crash: func(string) bool { return false }}
	err = l.Replay(0, func(r wal.Record) error {
		var rec storeRecord
		if err := json.Unmarshal(r.Payload, &rec); err != nil {
			return fmt.Errorf("record %d: %w", r.Seq, err)
		}
		switch r.Type {
		case storePrepared:
			_, err = inv.Reserve(rec.ID, rec.Payload)
		case storeCommitted:
			err = inv.Commit(rec.ID)
		case storeAborted:
			if _, rerr := inv.Reservation(rec.ID); rerr != nil {
				s.aborted[rec.ID] = true
			}
			err = inv.Abort(rec.ID)
		case storeOnePhase:
			if _, err = inv.Reserve(rec.ID, rec.Payload); err == nil {
				err = inv.Commit(rec.ID)
			}
		default:
			err = fmt.Errorf("unknown type %d", r.Type)
		}
		if err != nil {
			return fmt.Errorf("replay record %d: %w", r.Seq, err)
		}
		return nil
	})
	if err != nil {
		l.Close()
		return nil, err
	}
	return s, nil
}

// write appends one record, unforced, or forced with a crash point between
// the write and the sync.
func (s *simStore) write(typ uint8, id concord.TxID, payload json.RawMessage, sync bool) error {
	b, err := json.Marshal(storeRecord{ID: id, Payload: payload})
	if err != nil {
		return err
	}
	if _, err := appendUnforced(s.log, typ, b); err != nil {
		return err
	}
	if !sync {
		return nil
	}
	if s.crash("store: record written, not synced") {
		return errCrashed
	}
	if err := s.log.Sync(); err != nil {
		return err
	}
	if s.crash("store: record synced") {
		return errCrashed
	}
	return nil
}

func (s *simStore) Prepare(_ context.Context, id concord.TxID, payload json.RawMessage, _ participant.PrepareInfo) (participant.PrepareResult, error) {
	if isReadOnlyPayload(payload) {
		return participant.PrepareResult{Vote: concord.VoteReadOnly}, nil
	}
	if s.aborted[id] {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "aborted before its prepare arrived"}, nil
	}
	if r, err := s.inv.Reservation(id); err == nil {
		if r.State == travel.StateAborted {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: "aborted"}, nil
		}
		return participant.PrepareResult{Vote: concord.VoteYes}, nil
	}
	if _, err := s.inv.Reserve(id, payload); err != nil {
		s.aborted[id] = true // a no voter forgets the work, not the refusal
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: err.Error()}, nil
	}
	if err := s.write(storePrepared, id, payload, !s.unforced); err != nil {
		if !errors.Is(err, errCrashed) {
			s.inv.Abort(id)
		}
		return participant.PrepareResult{}, err
	}
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

func (s *simStore) Commit(_ context.Context, id concord.TxID) error {
	r, err := s.inv.Reservation(id)
	if err != nil {
		return fmt.Errorf("commit %s: %w", id, participant.ErrUnknownTx)
	}
	switch r.State {
	case travel.StateCommitted:
		return nil
	case travel.StateAborted:
		return fmt.Errorf("commit %s: %w", id, participant.ErrAlreadyDecided)
	}
	if err := s.write(storeCommitted, id, nil, !s.unforced); err != nil {
		return err
	}
	return s.inv.Commit(id)
}

func (s *simStore) Abort(_ context.Context, id concord.TxID) error {
	r, err := s.inv.Reservation(id)
	switch {
	case err != nil:
		if s.aborted[id] {
			return nil
		}
		// An abort that arrives before its prepare is a promise to refuse
		// that prepare, and the coordinator may settle a one-phase
		// transaction as aborted on its acknowledgement: it is forced, or
		// a crash would let the late one-phase prepare commit.
		if err := s.write(storeAborted, id, nil, true); err != nil {
			return err
		}
		s.aborted[id] = true
		return nil
	case r.State == travel.StateAborted:
		return nil
	case r.State == travel.StateCommitted:
		return fmt.Errorf("abort %s: %w", id, participant.ErrAlreadyDecided)
	}
	// A prepared transaction's abort is not forced (presumed abort): if a
	// crash loses it, the transaction is in doubt again and the
	// coordinator's answer aborts it again.
	if err := s.write(storeAborted, id, nil, false); err != nil {
		return err
	}
	return s.inv.Abort(id)
}

func (s *simStore) CommitOnePhase(_ context.Context, id concord.TxID, payload json.RawMessage, _ participant.PrepareInfo) (concord.Outcome, string, error) {
	if isReadOnlyPayload(payload) {
		return concord.OutcomeCommitted, "read-only", nil
	}
	if s.aborted[id] {
		return concord.OutcomeAborted, "aborted before its prepare arrived", nil
	}
	if r, err := s.inv.Reservation(id); err == nil {
		switch r.State {
		case travel.StateCommitted:
			return concord.OutcomeCommitted, "", nil
		case travel.StateAborted:
			return concord.OutcomeAborted, "aborted", nil
		}
		if err := s.write(storeCommitted, id, nil, true); err != nil {
			return concord.OutcomePending, "", err
		}
		return concord.OutcomeCommitted, "", s.inv.Commit(id)
	}
	if _, err := s.inv.Reserve(id, payload); err != nil {
		// A one-phase refusal is the transaction's outcome, final once
		// reported: it is forced, or a crash would let a late duplicate of
		// this request commit once stock is free again.
		if err := s.write(storeAborted, id, nil, true); err != nil {
			return concord.OutcomePending, "", err
		}
		s.aborted[id] = true
		return concord.OutcomeAborted, err.Error(), nil
	}
	if err := s.write(storeOnePhase, id, payload, true); err != nil {
		if !errors.Is(err, errCrashed) {
			s.inv.Abort(id)
		}
		return concord.OutcomePending, "", err
	}
	return concord.OutcomeCommitted, "", s.inv.Commit(id)
}

func (s *simStore) Recover(context.Context) ([]participant.RecoveredTx, error) {
	var txs []participant.RecoveredTx
	for _, r := range s.inv.Reservations(travel.StatePrepared) {
		txs = append(txs, participant.RecoveredTx{ID: r.ID})
	}
	return txs, nil
}

// state is where transaction id stands in the store, for the checker.
func (s *simStore) state(id concord.TxID) travel.State {
	r, err := s.inv.Reservation(id)
	if err != nil {
		if s.aborted[id] {
			return travel.StateAborted
		}
		return ""
	}
	return r.State
}

// appendUnforced appends a record without syncing it and waits until the
// log's writer has written it. Waiting keeps runs deterministic: otherwise
// how the writer goroutine happens to batch records decides where segments
// roll, and a roll syncs the records before it.
func appendUnforced(l *wal.Log, typ uint8, payload []byte) (uint64, error) {
	seq, err := l.AppendAsync(typ, payload)
	if err != nil {
		return 0, err
	}
	// Replaying from past the end reads nothing, but first waits for every
	// record appended to be written.
	err = l.Replay(seq+1, func(wal.Record) error { return nil })
	return seq, err
}

func (s *simStore) items() []travel.Item { return s.inv.Items() }
func (s *simStore) check() error         { return s.inv.Check() }
func (s *simStore) snapshot() error      { return nil }
func (s *simStore) close()               { s.log.Close() }

// discardLogger takes the logs' warnings: torn tails cut after a simulated
// crash are what the simulation is for, and the checker judges them.
var discardLogger = slog.New(slog.DiscardHandler)
