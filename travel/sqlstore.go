package travel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// A SQLStore keeps a service's inventory in PostgreSQL or MySQL/MariaDB and
// takes part in transactions through the database's own two-phase commit
// (participant/pgxa, participant/mysqlxa). Its tables are
// <service>_inventory (one row per SKU: capacity, available) and
// <service>_reservations (one row per transaction: SKU, quantity, state).
//
// A prepare runs two database transactions. The first, committed at once,
// holds the quantity: available goes down and a reservation row appears in
// state prepared. The second changes only that reservation row to committed
// and ends with PREPARE TRANSACTION (XA PREPARE), then the yes vote. COMMIT
// PREPARED makes the confirmation visible; an abort rolls the second back
// and releases the hold (available goes up, the row becomes aborted). So the
// prepared transaction locks its own reservation row only, never the SKU's
// row: bookings of one SKU do not queue behind each other's decisions, and
// no deadlock can form across databases. Every transaction keeps
// available + held + confirmed = capacity, where held and confirmed are the
// sums of the prepared and committed reservations.
//
// A crash between the two transactions, or between an abort and its
// release, leaves a hold that no prepared transaction backs; opening the
// store releases those (no yes vote was given for them, or the transaction
// was aborted).
//
// Like the file store, it remembers the newest DecidedRetention decided
// reservations; older ones are deleted and their confirmed quantities kept
// in the SKU's row, so reads stay fast however long the store runs.
type SQLStore struct {
	service string
	b       sqlBackend

	// Decided reservations are forgotten, oldest first, past keep of them:
	// every forgetEvery decisions, at most forgetBatch at a time, their
	// confirmed quantities folded into the SKU's row.
	keep, forgetEvery, forgetBatch int64
	decisions                      atomic.Int64
	forgetting                     sync.Mutex
}

// Defaults for forgetting decided reservations.
const (
	sqlForgetEvery = 500
	sqlForgetBatch = 1000
)

func newSQLStore(service string, b sqlBackend) *SQLStore {
	return &SQLStore{service: service, b: b, keep: DecidedRetention, forgetEvery: sqlForgetEvery, forgetBatch: sqlForgetBatch}
}

var (
	_ Store                        = (*SQLStore)(nil)
	_ participant.OnePhaseResource = (*SQLStore)(nil)
)

// sqlBackend is one database's part of a SQLStore.
type sqlBackend interface {
	// res is the database's two-phase resource, whose Work is the
	// backend's work function.
	res() participant.OnePhaseResource
	// status is where id stands in the two-phase resource.
	status(ctx context.Context, id concord.TxID) (xaStatus, error)
	// hold commits a hold of req for id, or says why not (ok false). A hold
	// that exists already is ok.
	hold(ctx context.Context, id concord.TxID, req Request) (ok bool, reason string, err error)
	// release gives back the quantity of id's reservation if it is prepared
	// and marks it aborted; otherwise it does nothing.
	release(ctx context.Context, id concord.TxID) error
	items(ctx context.Context) ([]Item, error)
	// reservation returns id's reservation row, ok false if none.
	reservation(ctx context.Context, id concord.TxID) (Reservation, bool, error)
	reservations(ctx context.Context, s State) ([]Reservation, error)
	// decidedCount counts the committed and aborted reservation rows.
	decidedCount(ctx context.Context) (int64, error)
	// oldestDecided lists up to limit committed or aborted reservations,
	// oldest first.
	oldestDecided(ctx context.Context, limit int64) ([]Reservation, error)
	// forget deletes the decided reservations old and adds confirmed (per
	// SKU) to the SKUs' rows, in one transaction.
	forget(ctx context.Context, old []Reservation, confirmed map[string]int64) error
	close() error
}

// xaStatus is where a transaction stands in a two-phase resource.
type xaStatus struct {
	state  string // unknown, prepared, committed, aborted, read-only
	reason string
}

// workMode tells a backend's work function what Prepare decided before it.
type workMode struct {
	refuse   string // vote no with this reason, doing nothing
	onePhase bool   // hold and confirm in this one transaction
}

type workModeKey struct{}

func withWorkMode(ctx context.Context, m workMode) context.Context {
	return context.WithValue(ctx, workModeKey{}, m)
}

func workModeOf(ctx context.Context) workMode {
	m, _ := ctx.Value(workModeKey{}).(workMode)
	return m
}

var serviceIdentRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// sqlTablePrefix checks that a service name can prefix table names.
func sqlTablePrefix(service string) (string, error) {
	if !serviceIdentRE.MatchString(service) {
		return "", fmt.Errorf("%w: service name %q cannot prefix SQL table names: want lower-case letters, digits and '_'", ErrBadOptions, service)
	}
	return service, nil
}

// Prepare holds what payload asks for and prepares the confirmation in the
// database, or votes no with the reason. A transaction the database already
// knows gets the same answer as before.
func (s *SQLStore) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	st, err := s.b.status(ctx, id)
	if err != nil {
		return participant.PrepareResult{}, err
	}
	if st.state != "unknown" {
		return s.b.res().Prepare(ctx, id, payload, info) // answers from its record
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return s.b.res().Prepare(withWorkMode(ctx, workMode{refuse: err.Error()}), id, payload, info)
	}
	ok, reason, err := s.b.hold(ctx, id, req)
	if err != nil {
		return participant.PrepareResult{}, fmt.Errorf("hold %s: %w", id, err)
	}
	if !ok {
		return s.b.res().Prepare(withWorkMode(ctx, workMode{refuse: reason}), id, payload, info)
	}
	res, err := s.b.res().Prepare(ctx, id, payload, info)
	if err != nil || res.Vote != concord.VoteYes {
		// Not prepared (or not known to be): give the hold back unless a
		// prepared transaction backs it, which keeps it locked.
		if rerr := s.release(ctx, id); rerr != nil && err == nil {
			err = fmt.Errorf("release hold of %s: %w", id, rerr)
		}
	}
	return res, err
}

// CommitOnePhase holds and confirms in one database transaction, or refuses.
func (s *SQLStore) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	mode := workMode{onePhase: true}
	if _, err := DecodeRequest(payload); err != nil {
		mode.refuse = err.Error()
	}
	return s.b.res().CommitOnePhase(withWorkMode(ctx, mode), id, payload, info)
}

// Commit commits the prepared confirmation of id's hold.
func (s *SQLStore) Commit(ctx context.Context, id concord.TxID) error {
	if err := s.b.res().Commit(ctx, id); err != nil {
		return err
	}
	s.decided(ctx)
	return nil
}

// Abort rolls back the prepared confirmation and releases the hold.
func (s *SQLStore) Abort(ctx context.Context, id concord.TxID) error {
	if err := s.b.res().Abort(ctx, id); err != nil {
		return err
	}
	if err := s.release(ctx, id); err != nil {
		return fmt.Errorf("release hold of %s: %w", id, err)
	}
	s.decided(ctx)
	return nil
}

// release gives back id's hold even when ctx has run out (a timed-out
// prepare is the usual reason to release), for a bounded time. A hold whose
// release fails stays until the store is opened again, which releases every
// hold no prepared transaction backs.
func (s *SQLStore) release(ctx context.Context, id concord.TxID) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return s.b.release(ctx, id)
}

// decided counts a decision and, every forgetEvery of them, forgets the
// oldest decided reservations past the newest keep. Best effort: a failure
// leaves them for the next time.
func (s *SQLStore) decided(ctx context.Context) {
	if s.decisions.Add(1)%s.forgetEvery != 0 || !s.forgetting.TryLock() {
		return
	}
	defer s.forgetting.Unlock()
	_ = s.forgetOld(ctx)
}

// forgetOld forgets the oldest decided reservations past the newest keep,
// at most forgetBatch of them. The rows of committed and aborted
// reservations never change again, so what it read is what it deletes; the
// confirmed quantities move to the SKUs' rows in the same transaction, which
// keeps every read conserved.
func (s *SQLStore) forgetOld(ctx context.Context) error {
	n, err := s.b.decidedCount(ctx)
	if err != nil || n <= s.keep {
		return err
	}
	old, err := s.b.oldestDecided(ctx, min(n-s.keep, s.forgetBatch))
	if err != nil || len(old) == 0 {
		return err
	}
	confirmed := map[string]int64{}
	for _, r := range old {
		if r.State == StateCommitted {
			confirmed[r.SKU] += r.Quantity
		}
	}
	return s.b.forget(ctx, old, confirmed)
}

// Remembered counts the transactions whose id starts with prefix that the
// database's decision table (or its prepared transactions) remember, after
// pruning the decisions whose time has passed
// (participanttest.Remembering).
func (s *SQLStore) Remembered(ctx context.Context, prefix string) (int, error) {
	r, ok := s.b.res().(interface {
		Remembered(ctx context.Context, prefix string) (int, error)
	})
	if !ok {
		return 0, fmt.Errorf("%s: the database resource cannot count what it remembers", s.service)
	}
	return r.Remembered(ctx, prefix)
}

// Recover lists the transactions prepared in the database.
func (s *SQLStore) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	return s.b.res().Recover(ctx)
}

// Items lists every SKU's state, read in one consistent snapshot.
func (s *SQLStore) Items(ctx context.Context) ([]Item, error) { return s.b.items(ctx) }

// Reservation returns id's reservation; a refused one is reported aborted
// with the reason for as long as the decision table remembers it.
func (s *SQLStore) Reservation(ctx context.Context, id concord.TxID) (Reservation, error) {
	r, ok, err := s.b.reservation(ctx, id)
	if err != nil || ok {
		return r, err
	}
	st, err := s.b.status(ctx, id)
	if err != nil {
		return Reservation{}, err
	}
	if st.state == "aborted" {
		return Reservation{ID: id, State: StateAborted, Reason: st.reason}, nil
	}
	return Reservation{}, fmt.Errorf("reservation %s: %w", id, ErrNoReservation)
}

// Reservations lists the reservations in state s ("" for all), ordered by
// transaction id. Refused ones are not listed.
func (s *SQLStore) Reservations(ctx context.Context, st State) ([]Reservation, error) {
	return s.b.reservations(ctx, st)
}

// Close closes the store's connections. Prepared transactions stay prepared
// in the database.
func (s *SQLStore) Close() error { return s.b.close() }

// Check verifies conservation for every SKU: available + held + confirmed =
// capacity, none negative.
func (s *SQLStore) Check(ctx context.Context) error {
	items, err := s.Items(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, it := range items {
		if it.Available < 0 || it.Held < 0 || it.Confirmed < 0 || it.Available+it.Held+it.Confirmed != it.Capacity {
			errs = append(errs, fmt.Errorf("%s: available %d + held %d + confirmed %d != capacity %d",
				it.SKU, it.Available, it.Held, it.Confirmed, it.Capacity))
		}
	}
	return errors.Join(errs...)
}

// releaseOrphans releases the holds no prepared transaction backs: left by a
// crash between a hold and its prepare, or between an abort and its release.
// It runs when the store opens, before any transaction.
func releaseOrphans(ctx context.Context, b sqlBackend) error {
	held, err := b.reservations(ctx, StatePrepared)
	if err != nil {
		return err
	}
	for _, r := range held {
		st, err := b.status(ctx, r.ID)
		if err != nil {
			return err
		}
		if st.state == "prepared" {
			continue
		}
		if err := b.release(ctx, r.ID); err != nil {
			return fmt.Errorf("release orphaned hold of %s: %w", r.ID, err)
		}
	}
	return nil
}

// reserveReason explains why req cannot be held, given what the SKU's row
// said (found false: no such SKU).
func reserveReason(req Request, found bool, available int64) string {
	if !found {
		return fmt.Errorf("%w %q", ErrUnknownSKU, req.SKU).Error()
	}
	return fmt.Errorf("%w: %s has %d available, %d asked", ErrNotEnough, req.SKU, available, req.Quantity).Error()
}
