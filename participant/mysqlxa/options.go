package mysqlxa

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// ErrBadOptions is wrapped by New's error for options that cannot work.
var ErrBadOptions = errors.New("bad mysqlxa options")

// Conn is the connection Work runs its statements on, inside the XA
// transaction. It is a *sql.Conn; Work must not begin, commit or roll back
// transactions on it.
type Conn interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Work does the domain part of transaction id on conn, inside its XA
// transaction: it checks and applies what payload asks for and votes. On
// VoteYes the transaction is prepared; on VoteNo or VoteReadOnly it is rolled
// back, whatever Work did. An error rolls everything back and is returned by
// Prepare, except lock wait timeouts and deadlocks, which become a no vote.
type Work func(ctx context.Context, conn Conn, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error)

// Defaults for Options.
const (
	DefaultTable       = "concord_decisions"
	DefaultLockTimeout = 5 * time.Second
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultPruneEvery  = 1000
	DefaultMaxPinned   = 16
)

// Options configures a Resource. DB, Name and Work are required.
type Options struct {
	// DB connects to the database that holds the service's data and the
	// decision table. The Resource does not close it. Every connection it
	// opens must use the same database.
	DB *sql.DB
	// Name identifies this participant in XA branch qualifiers
	// ("<database>/<name>", at most 64 bytes) and in the decision table:
	// every participant sharing a server needs its own. Letters, digits,
	// '.', '_' and '-'.
	Name string
	// Work is the service's domain logic, run by Prepare and CommitOnePhase.
	Work Work
	// Table is the decision table in the connection's database, created if
	// missing. Default DefaultTable.
	Table string
	// LockTimeout bounds how long Work waits for a row lock, which a
	// prepared transaction holds until it is decided; a timed-out prepare
	// votes no. InnoDB counts it in whole seconds (rounded up, at least 1).
	// Default DefaultLockTimeout.
	LockTimeout time.Duration
	// Retention is how long a decision row written without a forget time
	// (by a version older than Remember) is kept, by the database's clock,
	// before a prune deletes it. Default DefaultRetention; negative keeps
	// those rows.
	Retention time.Duration
	// PruneEvery is how many decisions pass between prunes. Default
	// DefaultPruneEvery.
	PruneEvery int
	// Remember is the time rule for decisions (participant.Retention): a
	// PREPARE for a transaction with no row is refused, and nothing
	// recorded, once its deadline has passed by Now; a decision row
	// written by this version is kept until its transaction's deadline
	// plus Remember.ClockSkew (an abort before any prepare: as if its
	// deadline were Remember.AbortDeadline of its time) and pruned after
	// it. Rows written without a deadline (by an older version) are
	// pruned by Retention. Zero fields take participant.DefaultRetention's
	// values.
	Remember participant.Retention
	// Now is the clock of Remember; nil means time.Now.
	Now func() time.Time
	// MaxPinned bounds the connections kept to finish the transactions
	// they prepared (saving a connection per transaction); past it a
	// prepared transaction's connection is closed, which detaches the
	// transaction for any connection to finish. Keep it well below the
	// DB's open-connection limit, so that kept connections never starve
	// the calls that decide them. Default DefaultMaxPinned; negative keeps
	// none.
	MaxPinned int
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)
)

func (o *Options) setDefaults() {
	if o.Table == "" {
		o.Table = DefaultTable
	}
	o.Remember = o.Remember.WithDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = DefaultLockTimeout
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneEvery == 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.MaxPinned == 0 {
		o.MaxPinned = DefaultMaxPinned
	}
}

func (o *Options) validate() error {
	switch {
	case o.DB == nil:
		return fmt.Errorf("%w: DB is nil", ErrBadOptions)
	case o.Work == nil:
		return fmt.Errorf("%w: Work is nil", ErrBadOptions)
	case !nameRE.MatchString(o.Name):
		return fmt.Errorf("%w: Name %q: want 1 to 64 letters, digits, '.', '_' or '-'", ErrBadOptions, o.Name)
	case !identRE.MatchString(o.Table):
		return fmt.Errorf("%w: Table %q is not a plain identifier (letters, digits, '_')", ErrBadOptions, o.Table)
	case o.PruneEvery < 0:
		return fmt.Errorf("%w: PruneEvery %d is negative", ErrBadOptions, o.PruneEvery)
	case o.Remember.Validate() != nil:
		return fmt.Errorf("%w: Remember: %v", ErrBadOptions, o.Remember.Validate())
	case o.LockTimeout < 0:
		return fmt.Errorf("%w: LockTimeout %v is negative", ErrBadOptions, o.LockTimeout)
	}
	return nil
}

// lockWaitSeconds is LockTimeout as innodb_lock_wait_timeout wants it.
func (o *Options) lockWaitSeconds() int64 {
	s := int64((o.LockTimeout + time.Second - 1) / time.Second)
	return max(s, 1)
}
