package mysqlxa_test

import (
	"encoding/json"
	"fmt"
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/mysqlxa"
	"github.com/concordtx/concord/participant/participanttest"
)

// TestConformance runs the shared Resource conformance suite against
// MySQL/MariaDB. A restart drops every connection of the old resource
// without deciding anything, as a crashed process would (its prepared XA
// transactions detach and stay prepared), and opens a new one.
func TestConformance(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T) (participant.Resource, func(t *testing.T) participant.Resource) {
			e := newEnv(t)
			r, db := e.open(t, "conf", 0)
			restart := func(t *testing.T) participant.Resource {
				r.Close()
				db.Close()
				var nr *mysqlxa.Resource
				nr, db = e.open(t, "conf", 0)
				r = nr
				return nr
			}
			return r, restart
		},
		Yes:          func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1}.payload() },
		No:           func(n int) json.RawMessage { return op{K: fmt.Sprintf("k%d", n), Add: 1, Vote: "no"}.payload() },
		Concurrency:  8,
		Transactions: 64,
	})
}
