package mysqlxa_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/mysqlxa"
	"github.com/concordtx/concord/participant/participanttest"
)

// TestConformance runs the shared Resource conformance suite against
// MySQL/MariaDB. A restart drops every connection of the old resource
// without deciding anything, as a crashed process would (its prepared XA
// transactions detach and stay prepared), and opens a new one.
func TestConformance(t *testing.T) {
	for _, c := range []struct {
		name      string
		maxPinned int
	}{
		{"pinned", 0},    // prepared transactions finished on the connection that prepared them
		{"detached", -1}, // every connection closed after XA PREPARE: finished from another
	} {
		t.Run(c.name, func(t *testing.T) { conformance(t, c.maxPinned) })
	}
}

func conformance(t *testing.T, maxPinned int) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			e := newEnv(t)
			e.now, e.remember = env.Now, env.Retention
			open := func() (*mysqlxa.Resource, *sql.DB) {
				db := openDB(t, e.db.URL)
				r, err := mysqlxa.New(context.Background(), mysqlxa.Options{DB: db, Name: "conf", Work: counterWork, MaxPinned: maxPinned,
					Now: env.Now, Remember: env.Retention})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { r.Close() })
				return r, db
			}
			r, db := open()
			restart := func(t *testing.T) participant.Resource {
				r.Close()
				db.Close()
				r, db = open()
				return r
			}
			return r, restart
		},
		Yes:          func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1}.payload() },
		No:           func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1, Vote: "no"}.payload() },
		Concurrency:  8,
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
