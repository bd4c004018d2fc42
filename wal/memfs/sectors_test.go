package memfs_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/concordtx/concord/wal/memfs"
)

// TestCrashSectorsAnySubset: the sectors of an unsynced write persist on
// their own, in every combination across seeds (a later one without an
// earlier one included); without torn, each whole or not at all; with
// torn, some in part. The file grows only as far as a persisted byte.
func TestCrashSectorsAnySubset(t *testing.T) {
	for _, torn := range []bool{false, true} {
		seen := map[string]bool{}
		partial := false
		for seed := range uint64(200) {
			m := memfs.New()
			f := mustCreate(t, m, "/f", string(make([]byte, 2*memfs.SectorSize)))
			f.Sync()
			m.SyncDir("/")
			f.WriteAt(bytes.Repeat([]byte{'a'}, 4*memfs.SectorSize), 0)
			m.CrashSectors(rand.New(rand.NewPCG(seed, 2)), torn)
			b, _ := m.ReadFile("/f")
			key := ""
			for s := 0; s < 4; s++ {
				lo, hi := s*memfs.SectorSize, (s+1)*memfs.SectorSize
				switch {
				case hi <= len(b) && bytes.Count(b[lo:hi], []byte{'a'}) == memfs.SectorSize:
					key += "w"
				case lo >= len(b) || bytes.Count(b[lo:min(hi, len(b))], []byte{'a'}) == 0:
					key += "-"
				default:
					key += "t"
					partial = true
					if !torn {
						t.Fatalf("seed %d: sector %d persisted in part without torn", seed, s)
					}
				}
			}
			if len(b) < 2*memfs.SectorSize || len(b) > 4*memfs.SectorSize {
				t.Fatalf("seed %d: file of %d bytes", seed, len(b))
			}
			seen[key] = true
		}
		if !seen["-w--"] || !seen["w-w-"] || !seen["----"] || !seen["wwww"] {
			t.Fatalf("torn=%v: combinations seen %v; want a later sector without an earlier one, and all or none", torn, seen)
		}
		if torn && !partial {
			t.Fatal("no sector was torn")
		}
	}
}

// TestCrashSectorsNamespace: pending creations and removals in a directory
// persist on their own: one without the other.
func TestCrashSectorsNamespace(t *testing.T) {
	seen := map[[2]bool]bool{}
	for seed := range uint64(64) {
		m := memfs.New()
		mustCreate(t, m, "/a", "a").Sync()
		m.SyncDir("/")
		m.Remove("/a")
		mustCreate(t, m, "/b", "b").Sync()
		m.CrashSectors(rand.New(rand.NewPCG(seed, 3)), false)
		_, a := content(t, m, "/a")
		_, b := content(t, m, "/b")
		seen[[2]bool{a, b}] = true
	}
	if len(seen) != 4 {
		t.Fatalf("combinations of (a kept, b created) seen: %v; want all four", seen)
	}
}

// TestFailedSyncLosesPages: as on Linux, the pages of a failed fsync are
// taken as clean: a later successful Sync does not make them durable.
func TestFailedSyncLosesPages(t *testing.T) {
	m := memfs.New()
	f := mustCreate(t, m, "/f", "0123456789")
	f.Sync()
	m.SyncDir("/")
	f.WriteAt([]byte("abc"), 2)
	m.FailNth(memfs.OpSync, 1, errors.New("EIO"))
	if err := f.Sync(); err == nil {
		t.Fatal("sync did not fail")
	}
	f.WriteAt([]byte("Z"), 9)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if got, _ := content(t, m, "/f"); got != "012345678Z" {
		t.Fatalf("after the crash %q, want the failed write lost and the later one kept", got)
	}
}

// TestDamageHelpers: FlipBit and LoseSector change durable content.
func TestDamageHelpers(t *testing.T) {
	m := memfs.New()
	mustCreate(t, m, "/f", string(bytes.Repeat([]byte{'a'}, 1500))).Sync()
	m.SyncDir("/")
	if err := m.FlipBit("/f", 3, 0); err != nil {
		t.Fatal(err)
	}
	if err := m.LoseSector("/f", 700); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	b, _ := m.ReadFile("/f")
	if b[3] != 'a'^1 || !bytes.Equal(b[512:1024], make([]byte, 512)) || b[1024] != 'a' || b[511] != 'a' {
		t.Fatal("damage not as asked, or not durable")
	}
	if err := m.FlipBit("/f", 5000, 0); err == nil {
		t.Fatal("a flip past the end succeeded")
	}
}
