package travel

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wal/memfs"
)

// TestFileStoreConformance runs the shared Resource conformance suite
// against the travel file store on an in-memory file system, where a restart
// is a crash that loses every write not yet synced.
func TestFileStoreConformance(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			mfs := memfs.New()
			open := func(t *testing.T) *FileStore {
				st, err := OpenFileStore(StoreConfig{Service: Hotels, Dir: "/data/hotels", FS: mfs, Stock: []Stock{{"H-PARIS", MaxCapacity}},
					Remember: env.Retention, Now: env.Now})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { st.Close() })
				return st
			}
			st := open(t)
			restart := func(t *testing.T) participant.Resource {
				mfs.Crash() // no Close: the process dies
				st = open(t)
				return st
			}
			return st, restart
		},
		Yes: func(int) json.RawMessage { return Request{SKU: "H-PARIS", Quantity: 1}.Payload() },
		No:  func(int) json.RawMessage { return Request{SKU: "H-NOWHERE", Quantity: 1}.Payload() },
	})
}
