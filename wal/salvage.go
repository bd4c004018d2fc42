package wal

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
)

// SalvageReport says what Salvage copied, and what it left behind.
type SalvageReport struct {
	// Damage is where reading stopped, as Inspect reports it (the zero
	// Damage if the log reads to its end). A SyncFailedFile note that
	// stops the copy earlier shows here too.
	Damage Damage
	// Copied counts the records copied, First to Last.
	Copied      int
	First, Last uint64
	// Files are the segment files written to the new directory.
	Files []string
	// LostFrom is the first record not copied (0 if the whole log was).
	// LostReadable counts the records after the damage that can still be
	// read (in the damaged segment and those after it), up to LostLast;
	// LostSegments are the later segments not copied.
	LostFrom     uint64
	LostReadable int
	LostLast     uint64
	LostSegments []string
}

// Salvage copies the log in opts.Dir up to its first damage (or the point a
// SyncFailedFile note names, if earlier) into the new directory dst, never
// changing the original: sealed segments before the damage whole, the
// damaged one up to the damage, nothing after. The copy opens without
// damage and keeps the sequence numbers of the original. dst must not
// exist or be empty; with dst "" nothing is written and the report says
// what a salvage would copy and lose. The report counts the records lost
// that can still be read; records after the damage that cannot be read are
// lost too and are not counted.
func Salvage(opts Options, dst string) (SalvageReport, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return SalvageReport{}, err
	}
	fsys := opts.FS
	var rep SalvageReport
	rep.Damage, err = Inspect(opts, 0, func(r Record) error {
		if rep.Copied == 0 {
			rep.First = r.Seq
		}
		rep.Copied++
		rep.Last = r.Seq
		return nil
	})
	if err != nil {
		return rep, err
	}
	segs, err := listSegments(fsys, opts.Dir)
	if err != nil {
		return rep, fmt.Errorf("wal: salvage: %w", err)
	}
	stopFile, stopAt := rep.Damage.File, rep.Damage.Offset
	if b, err := readWhole(fsys, filepath.Join(opts.Dir, SyncFailedFile)); err == nil {
		note, perr := parseSyncFailed(b)
		if perr != nil {
			return rep, fmt.Errorf("wal: salvage: %s: %v", SyncFailedFile, perr)
		}
		p := filepath.Join(opts.Dir, note.segment)
		if stopFile == "" || p < stopFile || (p == stopFile && note.offset < stopAt) {
			if rep, err = salvageCount(opts, segs, p, note.offset); err != nil {
				return rep, err
			}
			rep.Damage = Damage{File: p, Offset: note.offset, Reason: "a write or sync failed after this point (" + SyncFailedFile + ")", Next: note.seq + 1}
			stopFile, stopAt = p, note.offset
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return rep, fmt.Errorf("wal: salvage: %w", err)
	}
	if rep.Damage.Damaged() {
		rep.LostFrom = rep.Damage.Next
		if rep.LostFrom == 0 {
			rep.LostFrom = rep.Last + 1
		}
	}
	if dst != "" {
		if err := prepareDst(fsys, dst); err != nil {
			return rep, err
		}
	}
	stopped := false
	for _, s := range segs {
		if stopped {
			rep.LostSegments = append(rep.LostSegments, s.path)
			if n, last, err := countSegment(fsys, s); err == nil && n > 0 {
				rep.LostReadable += n
				rep.LostLast = max(rep.LostLast, last)
			}
			continue
		}
		data, err := readWhole(fsys, s.path)
		if err != nil {
			return rep, fmt.Errorf("wal: salvage: read %s: %w", s.path, err)
		}
		if s.path == stopFile {
			stopped = true
			data = data[:min(int64(len(data)), stopAt)]
			if rep.Damage.RecordsAfter > 0 {
				rep.LostReadable += rep.Damage.RecordsAfter
				rep.LostLast = max(rep.LostLast, rep.Damage.LastAfter)
			}
			if len(data) < segHeaderSize {
				continue // nothing of it is kept
			}
		}
		if dst == "" {
			continue
		}
		name := filepath.Join(dst, filepath.Base(s.path))
		if _, err := keepCopy(fsys, name, data); err != nil {
			return rep, fmt.Errorf("wal: salvage: write %s: %w", name, err)
		}
		rep.Files = append(rep.Files, name)
	}
	if dst != "" {
		if err := fsys.SyncDir(dst); err != nil {
			return rep, fmt.Errorf("wal: salvage: sync %s: %w", dst, err)
		}
	}
	return rep, nil
}

// salvageCount recounts the records of segs before offset off of the
// segment at path: what a salvage stopping there copies.
func salvageCount(opts Options, segs []segment, path string, off int64) (SalvageReport, error) {
	var rep SalvageReport
	for _, s := range segs {
		if s.path > path {
			break
		}
		f, err := opts.FS.OpenFile(s.path, false)
		if err != nil {
			return rep, fmt.Errorf("wal: salvage: %w", err)
		}
		size, err := f.Size()
		if err == nil && s.path == path {
			size = min(size, off)
		}
		var h []byte
		if err == nil {
			h, err = readSegHeader(f, size)
		}
		var nonce uint64
		if err == nil {
			_, nonce, err = decodeSegHeader(h)
		}
		if err == nil {
			_, err = scanSegment(f, size, s.first, nonce, 0, func(r Record) error {
				if rep.Copied == 0 {
					rep.First = r.Seq
				}
				rep.Copied++
				rep.Last = r.Seq
				return nil
			})
		}
		f.Close()
		if err != nil {
			return rep, fmt.Errorf("wal: salvage: %s: %w", s.path, err)
		}
	}
	return rep, nil
}

// countSegment returns how many records segment s holds before any damage,
// and the last one's sequence number.
func countSegment(fsys FS, s segment) (int, uint64, error) {
	f, err := fsys.OpenFile(s.path, false)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, 0, err
	}
	h, err := readSegHeader(f, size)
	if err != nil {
		return 0, 0, err
	}
	_, nonce, err := decodeSegHeader(h)
	if err != nil {
		return 0, 0, err
	}
	res, err := scanSegment(f, size, s.first, nonce, 0, nil)
	if err != nil {
		return 0, 0, err
	}
	return int(res.next - s.first), res.next - 1, nil
}

// prepareDst creates dst (durably) or checks that it is an empty directory.
func prepareDst(fsys FS, dst string) error {
	names, err := fsys.ReadDir(dst)
	switch {
	case err == nil && len(names) > 0:
		return fmt.Errorf("wal: salvage: %s is not empty", dst)
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		if err := fsys.MkdirAll(dst); err != nil {
			return fmt.Errorf("wal: salvage: create %s: %w", dst, err)
		}
		return nil
	}
	return fmt.Errorf("wal: salvage: %s: %w", dst, err)
}
