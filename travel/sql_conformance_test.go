package travel

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
)

// TestSQLStoreConformance runs the shared Resource conformance suite against
// the travel stores on PostgreSQL and MariaDB. A restart closes the store's
// connections without deciding anything and opens it again.
func TestSQLStoreConformance(t *testing.T) {
	for _, k := range sqlKinds {
		t.Run(k.name, func(t *testing.T) {
			participanttest.Run(t, participanttest.Harness{
				New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
					url := k.url(t)
					st := openSQLAt(t, url, []Stock{{"FL100", 100_000}}, env)
					restart := func(t *testing.T) participant.Resource {
						st.Close()
						st = openSQLAt(t, url, nil, env)
						return st
					}
					return st, restart
				},
				Yes:          func(int) json.RawMessage { return Request{SKU: "FL100", Quantity: 1}.Payload() },
				No:           func(int) json.RawMessage { return Request{SKU: "FL999", Quantity: 1}.Payload() },
				Concurrency:  8,
				Transactions: 64,
			})
		})
	}
}
