package mysqlxa

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// formatID marks Concord's XA transactions in XA RECOVER ("CONC").
const formatID = 0x434f4e43

// maxBqualLen is the XA limit on a branch qualifier.
const maxBqualLen = 64

// Resource is a participant.Resource whose prepared state lives in MySQL or
// MariaDB. It is safe for concurrent use. Besides its options it holds only
// the connections of the transactions it prepared, so a new Resource on the
// same database and Name picks up where a crashed one stopped.
type Resource struct {
	db       *sql.DB
	name     string
	work     Work
	table    string // quoted identifier
	coords   string // quoted identifier of the table of prepared transactions' coordinators
	remember participant.Retention
	now      func() time.Time
	bqual    string // "<database>/<name>"
	lockWait int64  // innodb_lock_wait_timeout for Work, seconds

	retention  time.Duration
	pruneEvery int64
	decisions  atomic.Int64 // decisions recorded, to prune every pruneEvery

	mu        sync.Mutex
	pinned    map[concord.TxID]xaConn // connections holding a prepared transaction
	maxPinned int
}

var (
	_ participant.Resource         = (*Resource)(nil)
	_ participant.OnePhaseResource = (*Resource)(nil)
)

// New creates the decision table if missing and returns a Resource.
func New(ctx context.Context, opts Options) (*Resource, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	var db sql.NullString
	if err := opts.DB.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&db); err != nil {
		return nil, fmt.Errorf("mysqlxa: read database name: %w", err)
	}
	if !db.Valid || db.String == "" {
		return nil, fmt.Errorf("%w: the connection has no database selected; name one in the DSN", ErrBadOptions)
	}
	r := &Resource{
		db:         opts.DB,
		name:       opts.Name,
		work:       opts.Work,
		table:      "`" + opts.Table + "`",
		coords:     "`" + opts.Table + "_coordinators`",
		remember:   opts.Remember,
		now:        opts.Now,
		bqual:      db.String + "/" + opts.Name,
		lockWait:   opts.lockWaitSeconds(),
		retention:  opts.Retention,
		pruneEvery: int64(opts.PruneEvery),
		pinned:     map[concord.TxID]xaConn{},
		maxPinned:  opts.MaxPinned,
	}
	if len(r.bqual) > maxBqualLen {
		return nil, fmt.Errorf("%w: database %q and Name %q make an XA branch qualifier of %d bytes, at most %d",
			ErrBadOptions, db.String, opts.Name, len(r.bqual), maxBqualLen)
	}
	_, err := r.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+r.table+` (
		participant VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
		txid        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
		state       VARCHAR(16) NOT NULL,
		reason      TEXT NOT NULL,
		decided_at  TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
		forget_ms   BIGINT NULL,
		PRIMARY KEY (participant, txid)) ENGINE=InnoDB`)
	if err != nil {
		return nil, fmt.Errorf("mysqlxa: create decision table %s: %w", r.table, err)
	}
	if err := r.upgradeTables(ctx, opts.Table); err != nil {
		return nil, err
	}
	return r, nil
}

// Name returns the participant name given in Options.
func (r *Resource) Name() string { return r.name }

// XID returns the XA transaction id, as SQL, that id is prepared under.
func (r *Resource) XID(id concord.TxID) string {
	return fmt.Sprintf("X'%x',X'%x',%d", string(id), r.bqual, formatID)
}

// Close drops the connections of prepared transactions without deciding
// them: the database keeps them prepared, and Recover on a new Resource
// lists them. It does not close the DB.
func (r *Resource) Close() error {
	r.mu.Lock()
	conns := r.pinned
	r.pinned = map[concord.TxID]xaConn{}
	r.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), detachTimeout)
	defer cancel()
	for _, c := range conns {
		discard(c.Conn)
	}
	for _, c := range conns {
		r.waitGone(ctx, c.id)
	}
	return nil
}

// xaConn is a connection with the server's id of its session.
type xaConn struct {
	*sql.Conn
	id int64
}

// discard closes c instead of returning it to the pool: a prepared XA
// transaction on it is detached and stays prepared; an active one rolls back.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
}

// detachTimeout bounds how long a closed session may take to go.
const detachTimeout = 5 * time.Second

// detach closes c and waits until the server has ended its session, so
// that its prepared transaction, if any, is detached before anyone else
// finishes it: XA COMMIT or XA ROLLBACK racing with the end of the session
// that prepared the transaction can leave it prepared yet missing from XA
// RECOVER until the server restarts (seen on MariaDB 10.11).
func (r *Resource) detach(ctx context.Context, c xaConn) {
	discard(c.Conn)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), detachTimeout)
	defer cancel()
	r.waitGone(ctx, c.id)
}

// waitGone waits until session id has left the server's process list, or
// ctx is done.
func (r *Resource) waitGone(ctx context.Context, id int64) {
	for attempt := 0; ; attempt++ {
		var n int
		err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = ?", id).Scan(&n)
		if err != nil || n == 0 {
			return
		}
		if sleepCtx(ctx, min(time.Millisecond<<min(attempt, 6), 50*time.Millisecond)) != nil {
			return
		}
	}
}

// pin keeps c, which holds id's prepared transaction, to finish it on; it
// reports false when MaxPinned connections are kept already.
func (r *Resource) pin(ctx context.Context, id concord.TxID, c xaConn) bool {
	r.mu.Lock()
	old, had := r.pinned[id]
	delete(r.pinned, id)
	ok := len(r.pinned) < r.maxPinned
	if ok {
		r.pinned[id] = c
	}
	r.mu.Unlock()
	if had && old.Conn != c.Conn {
		r.detach(ctx, old)
	}
	return ok
}

// unpin takes back id's kept connection, ok false if there is none.
func (r *Resource) unpin(id concord.TxID) (xaConn, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c, ok := r.pinned[id]
	delete(r.pinned, id)
	return c, ok
}

// Prepare runs Work for id in an XA transaction and prepares it on a yes
// vote. A transaction already prepared or committed votes yes again, one
// aborted or refused votes no again, without running Work.
//
// A transaction with no row is first admitted by Options.Remember
// (participant.Retention.Admit): past its deadline it votes no and nothing
// is recorded. Before the work, the coordinator the PREPARE names is
// recorded (committed on its own), for Recover to return.
func (r *Resource) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	if err := validateNewID(id); err != nil {
		return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare: %w", err)
	}
	for range 2 {
		st, err := r.decided(ctx, id)
		if err != nil {
			return participant.PrepareResult{}, err
		}
		switch st.State {
		case StateCommitted:
			return participant.PrepareResult{Vote: concord.VoteYes}, nil
		case StateAborted:
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: st.Reason}, nil
		case StateReadOnly:
			return participant.PrepareResult{Vote: concord.VoteReadOnly}, nil
		}
		forget, refused, done, err := r.admit(ctx, id, info)
		if errors.Is(err, errRaced) {
			// Prepared (XA START answers for it) or decided meanwhile.
			res, err := r.run(ctx, id, payload, false, forget)
			if errors.Is(err, errRaced) {
				continue
			}
			return res, err
		}
		if done || err != nil {
			return refused, err
		}
		if err := r.keepCoordinator(ctx, id, info.Coordinator, forget); err != nil {
			return participant.PrepareResult{}, err
		}
		res, err := r.run(ctx, id, payload, false, forget)
		if errors.Is(err, errRaced) {
			continue
		}
		return res, err
	}
	return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: the decision table keeps changing under it", id)
}

// errRaced means another call decided the same id meanwhile.
var errRaced = errors.New("raced with another call on the same transaction")

// run does the work of id in one XA transaction: the yes vote's decision
// row, then Work; it ends with XA PREPARE (or XA COMMIT ONE PHASE) on a yes
// vote and records a no or read-only vote in the decision table.
func (r *Resource) run(ctx context.Context, id concord.TxID, payload json.RawMessage, onePhase bool, forget int64) (res participant.PrepareResult, err error) {
	c, err := r.db.Conn(ctx)
	if err != nil {
		return res, fmt.Errorf("mysqlxa: prepare %s: connect: %w", id, err)
	}
	conn := xaConn{Conn: c}
	xid := r.XID(id)
	state := "idle" // idle, active, ended, prepared
	defer func() {
		switch state {
		case "idle":
			_ = conn.Close()
		case "prepared":
			switch {
			case onePhase:
				_ = conn.Close()
			case !r.pin(ctx, id, conn):
				r.detach(ctx, conn) // any connection can finish it now
			}
		case "gone":
		default: // unsure what the connection holds: closing it rolls back what is not prepared
			r.detach(ctx, conn)
		}
	}()
	var wait int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID(), @@SESSION.innodb_lock_wait_timeout").Scan(&conn.id, &wait); err != nil {
		return res, fmt.Errorf("mysqlxa: prepare %s: %w", id, err)
	}
	if wait != r.lockWait {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("SET SESSION innodb_lock_wait_timeout = %d", r.lockWait)); err != nil {
			return res, fmt.Errorf("mysqlxa: prepare %s: %w", id, err)
		}
	}
	if _, err := conn.ExecContext(ctx, "XA START "+xid); err != nil {
		if isNumber(err, errXADupID) {
			if onePhase {
				return res, fmt.Errorf("mysqlxa: one-phase commit %s: already prepared in two phases; decide it with Commit or Abort", id)
			}
			return participant.PrepareResult{Vote: concord.VoteYes}, nil
		}
		return res, fmt.Errorf("mysqlxa: prepare %s: XA START: %w", id, err)
	}
	state = "active"
	_, err = conn.ExecContext(ctx, "INSERT INTO "+r.table+" (participant, txid, state, reason, forget_ms) VALUES (?, ?, 'committed', '', ?)", r.name, string(id), forget)
	if err != nil {
		if isNumber(err, errDupEntry) || isNumber(err, errLockWaitTimeout) {
			r.rollback(ctx, conn, xid, &state)
			return res, errRaced
		}
		return res, fmt.Errorf("mysqlxa: prepare %s: record: %w", id, err)
	}
	res, err = r.work(ctx, conn, id, payload)
	if err != nil {
		r.rollback(ctx, conn, xid, &state)
		if reason, ok := transient(err); ok {
			return r.refuse(ctx, id, participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, forget)
		}
		return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: %w", id, err)
	}
	switch res.Vote {
	case concord.VoteYes:
	case concord.VoteNo, concord.VoteReadOnly:
		r.rollback(ctx, conn, xid, &state)
		if state != "idle" {
			return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: could not roll back", id)
		}
		return r.refuse(ctx, id, res, forget)
	default:
		r.rollback(ctx, conn, xid, &state)
		return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: Work voted %v; want yes, no or read-only", id, res.Vote)
	}
	if _, err := conn.ExecContext(ctx, "XA END "+xid); err != nil {
		r.rollback(ctx, conn, xid, &state)
		return r.failed(ctx, id, "XA END", err, forget)
	}
	state = "ended"
	end := "XA PREPARE " + xid
	if onePhase {
		end = "XA COMMIT " + xid + " ONE PHASE"
	}
	if _, err := conn.ExecContext(ctx, end); err != nil {
		r.rollback(ctx, conn, xid, &state)
		if !onePhase && state != "idle" && !isServerError(err) {
			// The answer was lost: the transaction may be prepared.
			// Nothing was voted, so roll it back rather than leave it
			// holding its locks until a restart finds it.
			r.detach(ctx, conn)
			state = "gone"
			r.rollbackLost(ctx, id)
		}
		return r.failed(ctx, id, end, err, forget)
	}
	state = "prepared"
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

// failed turns an error ending the XA transaction into a no vote when it is
// a conflict with other transactions, or an error.
func (r *Resource) failed(ctx context.Context, id concord.TxID, what string, err error, forget int64) (participant.PrepareResult, error) {
	if reason, ok := transient(err); ok {
		return r.refuse(ctx, id, participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, forget)
	}
	return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: %s: %w", id, what, err)
}

// rollback ends and rolls back the active XA transaction on conn, updating
// *state to "idle" when it is gone. On failure the caller discards conn.
func (r *Resource) rollback(ctx context.Context, conn xaConn, xid string, state *string) {
	if *state == "active" {
		if _, err := conn.ExecContext(ctx, "XA END "+xid); err != nil && !isNumber(err, errXARBDeadlock) && !isNumber(err, errXARBTimeout) {
			return
		}
		*state = "ended"
	}
	if _, err := conn.ExecContext(ctx, "XA ROLLBACK "+xid); err != nil && !isNumber(err, errXANota) &&
		!isNumber(err, errXARBDeadlock) && !isNumber(err, errXARBTimeout) {
		return
	}
	*state = "idle"
}

// refuse records a no or read-only vote so a repeated prepare gets it again.
func (r *Resource) refuse(ctx context.Context, id concord.TxID, res participant.PrepareResult, forget int64) (participant.PrepareResult, error) {
	state := StateAborted
	if res.Vote == concord.VoteReadOnly {
		state = StateReadOnly
	}
	st, err := r.record(ctx, r.db, id, state, res.Reason, forget)
	if err != nil {
		return participant.PrepareResult{}, fmt.Errorf("mysqlxa: prepare %s: record %s vote: %w", id, res.Vote, err)
	}
	if st.State != state {
		return participant.PrepareResult{}, errRaced
	}
	r.noteDecision(ctx)
	return res, nil
}

// CommitOnePhase runs Work for id and commits at once with XA COMMIT ... ONE
// PHASE on a yes vote, for a transaction with this participant alone. It is
// idempotent on id like Prepare.
func (r *Resource) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	if err := validateNewID(id); err != nil {
		return concord.OutcomeAborted, "", fmt.Errorf("mysqlxa: one-phase commit: %w", err)
	}
	for range 2 {
		st, err := r.decided(ctx, id)
		if err != nil {
			return concord.OutcomeAborted, "", err
		}
		switch st.State {
		case StateCommitted, StateReadOnly:
			return concord.OutcomeCommitted, "", nil
		case StateAborted:
			return concord.OutcomeAborted, st.Reason, nil
		}
		forget, refused, done, err := r.admit(ctx, id, info)
		switch {
		case errors.Is(err, errRaced):
			// Prepared (XA START answers for it) or decided meanwhile.
		case err != nil:
			return concord.OutcomeAborted, "", err
		case done:
			return concord.OutcomeAborted, refused.Reason, nil
		}
		res, err := r.run(ctx, id, payload, true, forget)
		if errors.Is(err, errRaced) {
			continue
		}
		if err != nil {
			return concord.OutcomeAborted, "", err
		}
		if res.Vote == concord.VoteNo {
			return concord.OutcomeAborted, res.Reason, nil
		}
		return concord.OutcomeCommitted, "", nil
	}
	return concord.OutcomeAborted, "", fmt.Errorf("mysqlxa: one-phase commit %s: the decision table keeps changing under it", id)
}

// rollbackLost rolls back id's prepared XA transaction, if there is one,
// after the answer to its XA PREPARE was lost and its connection dropped. The
// server detaches the transaction from the dead session a moment later, so
// it tries a few times, for a few seconds even if ctx is done; if it fails,
// Recover lists the transaction after a restart.
func (r *Resource) rollbackLost(ctx context.Context, id concord.TxID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for attempt := range 8 {
		_, err := r.db.ExecContext(ctx, "XA ROLLBACK "+r.XID(id))
		if err == nil || !isNumber(err, errXANota) {
			return
		}
		ids, err := r.prepared(ctx)
		if err != nil || !slices.Contains(ids, id) {
			return // not prepared at all
		}
		t := time.NewTimer(10 * time.Millisecond << attempt)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// upgradeTables adds forget_ms to a decision table an older version
// created, if missing (ALTER TABLE waits for every prepared transaction
// holding a row lock in it), and creates the table of coordinators.
func (r *Resource) upgradeTables(ctx context.Context, table string) error {
	var n int
	if err := r.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM information_schema.columns
		WHERE table_schema = DATABASE() AND table_name = ? AND column_name = 'forget_ms'`, table).Scan(&n); err != nil {
		return fmt.Errorf("mysqlxa: read the columns of %s: %w", r.table, err)
	}
	if n == 0 {
		if _, err := r.db.ExecContext(ctx, "ALTER TABLE "+r.table+" ADD COLUMN forget_ms BIGINT NULL"); err != nil {
			return fmt.Errorf("mysqlxa: add forget_ms to the decision table %s: %w", r.table, err)
		}
	}
	_, err := r.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+r.coords+` (
		participant VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
		txid        VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
		coordinator TEXT NOT NULL,
		forget_ms   BIGINT NOT NULL,
		PRIMARY KEY (participant, txid)) ENGINE=InnoDB`)
	if err != nil {
		return fmt.Errorf("mysqlxa: create the coordinator table %s: %w", r.coords, err)
	}
	return nil
}

// admit applies Options.Remember to a PREPARE of id, which has no row: it
// returns when the decision will be forgotten (Unix ms), or, done, the
// refusal to answer (nothing recorded past the deadline; recorded for a
// deadline too far ahead). errRaced means id is known after all: answer
// from what is there.
func (r *Resource) admit(ctx context.Context, id concord.TxID, info participant.PrepareInfo) (forget int64, refused participant.PrepareResult, done bool, err error) {
	adm := r.remember.Admit(info, r.now())
	forget = r.remember.ForgetAt(adm.Deadline).UnixMilli()
	if adm.Refuse == "" {
		return forget, participant.PrepareResult{}, false, nil
	}
	// The decision table does not show a prepared transaction (its row is
	// written inside it): one must be answered from what it is, whatever
	// the time. Only a refusal pays for the look.
	if st, err := r.Status(ctx, id); err != nil {
		return forget, participant.PrepareResult{}, false, err
	} else if st.State != StateUnknown {
		return forget, participant.PrepareResult{}, false, errRaced // answer from the record, or from XA START
	}
	res := participant.PrepareResult{Vote: concord.VoteNo, Reason: adm.Refuse}
	if !adm.Remember {
		return forget, res, true, nil
	}
	res, err = r.refuse(ctx, id, res, forget)
	return forget, res, true, err
}

// keepCoordinator records the coordinator of id's PREPARE, before it is
// prepared.
func (r *Resource) keepCoordinator(ctx context.Context, id concord.TxID, c participant.CoordinatorRef, forget int64) error {
	_, err := r.db.ExecContext(ctx, `INSERT INTO `+r.coords+` (participant, txid, coordinator, forget_ms) VALUES (?, ?, ?, ?)
		ON DUPLICATE KEY UPDATE coordinator = VALUES(coordinator), forget_ms = VALUES(forget_ms)`,
		r.name, string(id), string(c.Encode()), forget)
	if err != nil {
		return fmt.Errorf("mysqlxa: prepare %s: record the coordinator: %w", id, err)
	}
	return nil
}

// validateNewID checks the id of a PREPARE: the strict check, which refuses
// ids made only of dots. COMMIT, ABORT and Recover, which reach what was
// prepared before such ids were refused, use concord.ValidateStoredTxID. A
// variable so that a test can prepare what an older version prepared.
var validateNewID = concord.ValidateTxID
