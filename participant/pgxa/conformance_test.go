package pgxa_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/participant/pgxa"
)

// TestConformance runs the shared Resource conformance suite against
// PostgreSQL. A restart closes every connection of the old resource without
// deciding anything, as a crashed process would, and opens a new one.
func TestConformance(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			e := newEnv(t)
			e.now, e.remember = env.Now, env.Retention
			open := func(t *testing.T) (*pgxa.Resource, *pgxpool.Pool) { return e.open(t, "conf", 0) }
			r, pool := open(t)
			restart := func(t *testing.T) participant.Resource {
				pool.Close()
				var nr *pgxa.Resource
				nr, pool = open(t)
				return nr
			}
			return r, restart
		},
		Yes:          func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1}.payload() },
		No:           func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1, Vote: "no"}.payload() },
		Concurrency:  8, // prepared transactions are a server-wide resource (max_prepared_transactions)
		Transactions: 64,
	})
}

// recoveredIDs are the ids Recover listed.
func recoveredIDs(txs []participant.RecoveredTx) []concord.TxID {
	ids := make([]concord.TxID, len(txs))
	for i, tx := range txs {
		ids[i] = tx.ID
	}
	return ids
}
