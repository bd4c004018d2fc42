package filestore_test

import (
	"encoding/json"
	"testing"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

func noPayload(int) json.RawMessage { return json.RawMessage(`{"take":0}`) }

func yesPayload(n int) json.RawMessage { return takePayload(1 + n%3) }

// TestConformanceMemFS runs the suite on memfs, where a restart is a crash
// that loses every write not synced.
func TestConformanceMemFS(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			fs := memfs.New()
			open := func(t *testing.T) *filestore.Store {
				s, err := filestore.Open(filestore.Options{Dir: "/store", FS: fs, Machine: newCounter(1 << 30), SnapshotEvery: 50,
					Now: env.Now, Retention: env.Retention})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				return s
			}
			s := open(t)
			return s, func(t *testing.T) participant.Resource {
				fs.Crash() // the old store is abandoned: its files fail from now on
				s = open(t)
				return s
			}
		},
		Yes: yesPayload,
		No:  noPayload,
	})
}

// TestConformanceOSFS runs the suite on the real file system. A process
// cannot lose its own unsynced writes, so a restart here closes the store
// and reopens it: this checks replay and snapshots on real files, while the
// memfs run checks what survives a crash.
func TestConformanceOSFS(t *testing.T) {
	participanttest.Run(t, participanttest.Harness{
		New: func(t *testing.T, env participanttest.Env) (participant.Resource, func(t *testing.T) participant.Resource) {
			dir := t.TempDir()
			var cur *filestore.Store
			open := func(t *testing.T) *filestore.Store {
				s, err := filestore.Open(filestore.Options{Dir: dir, FS: wal.OSFS{}, Machine: newCounter(1 << 30), SnapshotEvery: 50,
					Now: env.Now, Retention: env.Retention})
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				return s
			}
			cur = open(t)
			t.Cleanup(func() { cur.Close() })
			return cur, func(t *testing.T) participant.Resource {
				cur.Close()
				cur = open(t)
				return cur
			}
		},
		Yes: yesPayload,
		No:  noPayload,
	})
}
