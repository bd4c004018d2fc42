package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord/wal"
	"github.com/concordtx/concord/wal/memfs"
)

// TestCrashSectorsAndDamage runs concurrent appends, a power loss at a
// random moment that persists the unsynced sectors in any subset (some
// torn), and then, on a copy of what survived, damage at rest to a synced
// record or mark that a later mark covers (a flipped bit or a lost sector).
// The power loss alone must open with every acknowledged record intact;
// with the damage, Open must refuse with ErrCorrupt naming the file and
// the offset of the damaged frame. Never is an acknowledged record missing
// or wrong after an Open that succeeds.
func TestCrashSectorsAndDamage(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 60
	}
	var damaged, torn int
	for seed := range uint64(seeds) {
		d, tc := sectorCrashSeed(t, seed)
		damaged += d
		torn += tc
		if t.Failed() {
			t.Fatalf("seed %d failed", seed)
		}
	}
	t.Logf("%d seeds: %d damaged and refused, %d torn tails cut", seeds, damaged, torn)
	if damaged < seeds/4 || torn < seeds/40 {
		t.Fatalf("too little exercised: %d damaged, %d torn tails", damaged, torn)
	}
}

// copyFS returns a new memfs holding the files of testDir in m, durably.
func copyFS(t *testing.T, m *memfs.FS) *memfs.FS {
	t.Helper()
	c := memfs.New()
	c.MkdirAll(testDir)
	names, err := m.ReadDir(testDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, _ := m.ReadFile(testDir + "/" + n)
		c.WriteFile(testDir+"/"+n, b)
	}
	return c
}

func sectorCrashSeed(t *testing.T, seed uint64) (damaged, torn int) {
	rng := rand.New(rand.NewPCG(seed, 0x5ec7))
	m := memfs.New()
	opts := wal.Options{Dir: testDir, FS: m, SegmentSize: int64(512 + rng.IntN(4096)), IdleMark: time.Millisecond}
	if rng.IntN(3) == 0 {
		opts.Preallocate = -1
	}
	l, err := wal.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[uint64][]byte{}
	goroutines, perG := 1+rng.IntN(6), 5+rng.IntN(20)
	crashAt := rng.IntN(goroutines * perG)
	var count int
	var crashOnce sync.Once
	crash := func() { crashOnce.Do(func() { m.CrashSectors(rand.New(rand.NewPCG(seed, 1)), true) }) }
	var wg sync.WaitGroup
	for g := range goroutines {
		kinds := make([]int, perG)
		for i := range kinds {
			kinds[i] = rng.IntN(4)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			step := func() {
				mu.Lock()
				count++
				if count == crashAt {
					crash()
				}
				mu.Unlock()
			}
			for i := range perG {
				p := crashPayload(0, g, i, 10+(g*7+i*13)%300)
				var seq uint64
				var err error
				switch kinds[i] {
				case 0:
					batch := []wal.Entry{{Type: 1, Payload: p}, {Type: 1, Payload: p[:len(p)/2]}, {Type: 1, Payload: p[:len(p)/3]}}
					if _, err = l.AppendBatch(batch, false); err != nil {
						return
					}
					if g == 0 {
						l.Replay(0, func(wal.Record) error { return nil }) // written now
					}
					step() // a crash now finds it written, not synced
					continue
				case 1:
					time.Sleep(time.Duration(i%3) * time.Millisecond) // room for an idle mark
					fallthrough
				default:
					seq, err = l.Append(3, p)
				}
				if err != nil {
					return
				}
				mu.Lock()
				acked[seq] = p
				mu.Unlock()
				step()
			}
		}()
	}
	wg.Wait()
	crash()
	l.Close()

	// The power loss alone: every acknowledged record, intact.
	ctl := copyFS(t, m)
	d, err := wal.Inspect(wal.Options{Dir: testDir, FS: ctl}, 0, func(wal.Record) error { return nil })
	if err != nil {
		t.Fatalf("seed %d: inspect: %v", seed, err)
	}
	l2, err := wal.Open(wal.Options{Dir: testDir, FS: ctl})
	if err != nil {
		t.Fatalf("seed %d: open after a power loss: %v", seed, err)
	}
	got := map[uint64][]byte{}
	for _, r := range replayAll(t, l2) {
		got[r.Seq] = r.Payload
	}
	l2.Close()
	for seq, p := range acked {
		if !bytes.Equal(got[seq], p) {
			t.Fatalf("seed %d: acknowledged record %d %q lost or changed: %q", seed, seq, p, got[seq])
		}
	}
	if d.Damaged() {
		torn++
	}

	// Damage at rest to a covered frame of what survived.
	segs := segments(t, m)
	type target struct {
		seg  string
		f    frameAt
		maxS uint64 // frames with seq up to this are covered
	}
	var targets []target
	for i, s := range segs {
		b, _ := m.ReadFile(s)
		fr := layout(b)
		if i < len(segs)-1 {
			for _, f := range fr {
				targets = append(targets, target{s, f, ^uint64(0)})
			}
			continue
		}
		valid := len(b)
		if d.Damaged() && d.File == s {
			valid = int(d.Offset)
		}
		var maxS uint64
		for _, f := range fr {
			if f.end <= valid && f.mark {
				maxS = max(maxS, f.synced)
			}
		}
		for _, f := range fr {
			if f.end <= valid && f.seq <= maxS {
				targets = append(targets, target{s, f, maxS})
			}
		}
	}
	if len(targets) == 0 {
		return 0, torn
	}
	tg := targets[rng.IntN(len(targets))]
	dm := copyFS(t, m)
	var what string
	if rng.IntN(2) == 0 {
		off := tg.f.off + rng.IntN(tg.f.end-tg.f.off)
		bit := uint(rng.IntN(8))
		what = fmt.Sprintf("bit %d of byte %d of %s", bit, off, tg.seg)
		dm.FlipBit(tg.seg, int64(off), bit)
	} else {
		// Lose the sector that holds the frame's first byte; the damage
		// starts at the first frame the sector touches.
		sec := tg.f.off / memfs.SectorSize * memfs.SectorSize
		b, _ := m.ReadFile(tg.seg)
		if sec < segHeader {
			return 0, torn // the header: tested elsewhere
		}
		fr := layout(b)
		covered := tg.maxS // a sealed segment: any damage refuses
		if tg.maxS != ^uint64(0) {
			// Only marks the lost sector leaves whole say anything.
			covered = 0
			for _, f := range fr {
				if f.mark && f.off >= sec+memfs.SectorSize && f.seq <= tg.maxS+1 {
					covered = max(covered, f.synced)
				}
			}
		}
		for _, f := range fr {
			// The first frame the loss changes (bytes that were zero,
			// such as the high bytes of a mark's number, stay as they were).
			if f.end > sec && f.off < sec+memfs.SectorSize && !allZero(b[max(f.off, sec):min(f.end, sec+memfs.SectorSize)]) {
				if f.seq > covered {
					return 0, torn
				}
				tg.f = f
				break
			}
		}
		what = fmt.Sprintf("sector at %d of %s", sec, tg.seg)
		dm.LoseSector(tg.seg, int64(sec))
	}
	_, err = wal.Open(wal.Options{Dir: testDir, FS: dm})
	want := fmt.Sprintf("%s at offset %d", tg.seg, tg.f.off)
	if !errors.Is(err, wal.ErrCorrupt) || !strings.Contains(err.Error(), want) {
		t.Fatalf("seed %d: %s (frame %+v): open = %v, want ErrCorrupt naming %q", seed, what, tg.f, err, want)
	}
	return 1, torn
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }
