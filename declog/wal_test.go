package declog_test

import (
	"errors"
	"testing"
	"time"

	"github.com/concordtx/concord/declog"
	"github.com/concordtx/concord/declog/declogtest"
	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// TestWALConformance runs the conformance suite against the local
// write-ahead log, on the crash-simulating file system so that a fault can
// poison it.
func TestWALConformance(t *testing.T) {
	declogtest.Run(t, declogtest.Impl{
		New: func(t *testing.T) declogtest.Store {
			fs := memfs.New()
			// An fsync that takes time, as a disk's does: without it the
			// in-memory file system syncs at once and appenders seldom
			// overlap enough to share one.
			fs.SetFault(func(op memfs.Op, _ string) error {
				if op == memfs.OpSync {
					time.Sleep(200 * time.Microsecond)
				}
				return nil
			})
			return declogtest.Store{
				Open: func() (declog.Log, error) {
					return wal.Open(wal.Options{Dir: "/wal", FS: fs, SegmentSize: 4096, MaxRecordSize: 8192})
				},
				// A power loss: files go back to what was synced.
				Crash: func(t *testing.T) { fs.Crash() },
				Poison: func(t *testing.T) {
					fs.FailNth(memfs.OpSync, 1, errors.New("injected fsync failure"))
				},
			}
		},
		MaxRecordSize: 8192,
		CompactUnit:   4096 / 120,
	})
}
