package pgxa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// ErrPreparedDisabled is returned by New when the server's
// max_prepared_transactions is zero, so PREPARE TRANSACTION cannot work.
var ErrPreparedDisabled = errors.New("PostgreSQL prepared transactions are disabled (max_prepared_transactions = 0): " +
	"run ALTER SYSTEM SET max_prepared_transactions = 64 as a superuser and restart the server")

// ErrBadOptions is wrapped by New's error for options that cannot work.
var ErrBadOptions = errors.New("bad pgxa options")

// Work does the domain part of transaction id inside tx: it checks and
// applies what payload asks for and votes. On VoteYes the transaction is
// prepared; on VoteNo or VoteReadOnly it is rolled back, whatever Work did.
// Work must not commit or roll back tx itself. An error rolls everything back
// and is returned by Prepare, except lock timeouts, deadlocks and
// serialization failures, which become a no vote.
type Work func(ctx context.Context, tx pgx.Tx, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error)

// Defaults for Options.
const (
	DefaultTable       = "concord_decisions"
	DefaultLockTimeout = 5 * time.Second
	DefaultRetention   = 7 * 24 * time.Hour
	DefaultPruneEvery  = 1000
)

// Options configures a Resource. Pool, Name and Work are required.
type Options struct {
	// Pool connects to the database that holds the service's data and the
	// decision table. The Resource does not close it.
	Pool *pgxpool.Pool
	// Name identifies this participant in global transaction ids
	// ("concord/<database>/<schema>/<name>/<txid>", where schema is the
	// decision table's) and in the decision table: every participant sharing
	// a decision table needs its own. Letters, digits, '.', '_' and '-', at
	// most 64 bytes.
	Name string
	// Work is the service's domain logic, run by Prepare and CommitOnePhase.
	Work Work
	// Table is the decision table, optionally schema-qualified
	// ("schema.table"); created if missing. Default DefaultTable, found
	// through the connection's search_path.
	Table string
	// LockTimeout bounds how long Work (and the decision table) waits for a
	// row lock, which a prepared transaction holds until it is decided; a
	// timed-out prepare votes no. Default DefaultLockTimeout.
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
}

var (
	nameRE  = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)
)

func (o *Options) setDefaults() {
	if o.Table == "" {
		o.Table = DefaultTable
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
	o.Remember = o.Remember.WithDefaults()
	if o.Now == nil {
		o.Now = time.Now
	}
}

func (o *Options) validate() error {
	switch {
	case o.Pool == nil:
		return fmt.Errorf("%w: Pool is nil", ErrBadOptions)
	case o.Work == nil:
		return fmt.Errorf("%w: Work is nil", ErrBadOptions)
	case !nameRE.MatchString(o.Name):
		return fmt.Errorf("%w: Name %q: want 1 to 64 letters, digits, '.', '_' or '-'", ErrBadOptions, o.Name)
	case o.PruneEvery < 0:
		return fmt.Errorf("%w: PruneEvery %d is negative", ErrBadOptions, o.PruneEvery)
	case o.Remember.Validate() != nil:
		return fmt.Errorf("%w: Remember: %v", ErrBadOptions, o.Remember.Validate())
	case o.LockTimeout < time.Millisecond:
		return fmt.Errorf("%w: LockTimeout %v: want at least 1ms", ErrBadOptions, o.LockTimeout)
	}
	if _, err := tableIdent(o.Table); err != nil {
		return err
	}
	return nil
}

// tableIdent parses "table" or "schema.table" into a quoted identifier.
func tableIdent(s string) (pgx.Identifier, error) {
	var parts pgx.Identifier
	for i, start := 0, 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '.' {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	if len(parts) > 2 {
		return nil, fmt.Errorf("%w: Table %q: want table or schema.table", ErrBadOptions, s)
	}
	for _, p := range parts {
		if !identRE.MatchString(p) {
			return nil, fmt.Errorf("%w: Table %q: %q is not a plain identifier (letters, digits, '_')", ErrBadOptions, s, p)
		}
	}
	return parts, nil
}
