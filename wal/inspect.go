package wal

import (
	"errors"
	"fmt"
)

// Damage says where and why reading a log stopped early. The zero Damage
// means the log was read to its end.
type Damage struct {
	File   string // the segment file
	Offset int64  // byte offset of the first bad byte in File
	Reason string // what is wrong there
	// TornTail is true when Open would cut the damage off as a torn tail
	// (keeping a copy) and go on; false when Open would refuse the log.
	TornTail bool
	// Next is the sequence number of the record expected at Offset: the
	// records before it were read intact.
	Next uint64
	// Synced is the highest sequence number a mark of the segment says
	// was synced (0 if none says anything); a damaged record at or below
	// it was synced, which is why Open refuses.
	Synced uint64
	// RecordsAfter counts the valid records found after the damage, with
	// sequence numbers of at least Next, from FirstAfter to LastAfter:
	// what a cut at Offset would lose, as far as it can still be read.
	RecordsAfter          int
	FirstAfter, LastAfter uint64
}

// Damaged reports whether d describes damage.
func (d Damage) Damaged() bool { return d.File != "" }

// String describes d for people.
func (d Damage) String() string {
	if !d.Damaged() {
		return "no damage"
	}
	what := "corruption; open would refuse the log"
	if d.TornTail {
		what = "torn tail; open would cut it off and keep a copy"
	}
	return fmt.Sprintf("%s at offset %d: %s (%s)", d.File, d.Offset, d.Reason, what)
}

// Inspect reads the log in opts.Dir without locking it and without
// repairing anything, calling fn for every record with Seq >= from until
// the end of the log or the first damage, which it returns, classified as
// Open would (a torn tail Open cuts, or damage Open refuses). Zeros after
// the last record of the last segment are the end of the log, not damage;
// so are zeros ending an earlier segment if the next one starts with the
// record that follows (see Open). A SyncFailedFile in the directory is not
// applied. The error is for bad options, I/O errors and fn's errors. On a
// log being written, a record still being written may show as a torn tail.
func Inspect(opts Options, from uint64, fn func(Record) error) (Damage, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return Damage{}, err
	}
	segs, err := listSegments(opts.FS, opts.Dir)
	if err != nil {
		return Damage{}, fmt.Errorf("wal: inspect: %w", err)
	}
	var next uint64
	for i, s := range segs {
		var nextFirst uint64 // first record of the next segment, 0 if none
		if i < len(segs)-1 {
			nextFirst = segs[i+1].first
		}
		if i > 0 && s.first != next {
			reason := fmt.Sprintf("starts at record %d, want %d", s.first, next)
			if s.first > next {
				reason += fmt.Sprintf(": %v (records %d..%d)", ErrMissingSegment, next, s.first-1)
			}
			return Damage{File: s.path, Reason: reason}, nil
		}
		d, n, err := inspectSegment(opts, s, nextFirst, from, fn)
		if err != nil || d.Damaged() {
			return d, err
		}
		next = n
	}
	return Damage{}, nil
}

func inspectSegment(opts Options, s segment, nextFirst uint64, from uint64, fn func(Record) error) (Damage, uint64, error) {
	last := nextFirst == 0
	f, err := opts.FS.OpenFile(s.path, false)
	if err != nil {
		return Damage{}, 0, fmt.Errorf("wal: inspect: %w", err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return Damage{}, 0, fmt.Errorf("wal: inspect: size of %s: %w", s.path, err)
	}
	h, err := readSegHeader(f, size)
	if err != nil {
		return Damage{}, 0, fmt.Errorf("wal: inspect: %s: %w", s.path, err)
	}
	first, nonce, herr := decodeSegHeader(h)
	if herr != nil {
		torn := false
		if last {
			all := make([]byte, size)
			if _, err := f.ReadAt(all, 0); err != nil && size > 0 {
				return Damage{}, 0, fmt.Errorf("wal: inspect: read %s: %w", s.path, err)
			}
			torn = (size < segHeaderSize || isZero(all)) && !errors.Is(herr, ErrVersion)
		}
		return Damage{File: s.path, Reason: herr.Error(), TornTail: torn, Next: s.first}, 0, nil
	}
	if first != s.first {
		return Damage{File: s.path, Reason: fmt.Sprintf("header says first record %d, name says %d", first, s.first), Next: s.first}, 0, nil
	}
	var fnErr error
	res, err := scanSegment(f, size, s.first, nonce, from, func(r Record) error {
		fnErr = fn(r)
		return fnErr
	})
	if fnErr != nil {
		return Damage{}, 0, fnErr
	}
	if err != nil {
		return Damage{}, 0, fmt.Errorf("wal: inspect: %s: %w", s.path, err)
	}
	switch {
	case res.kind == damageNone, last && res.kind == damageZeros && !res.syncedLost():
		return Damage{}, res.next, nil
	case !last && res.kind == damageZeros && res.next == nextFirst:
		return Damage{}, res.next, nil // zeros a roll's cut left
	case !last && res.kind == damageZeros:
		res.reason = fmt.Sprintf("zeroed tail after record %d, but the next segment starts at record %d", res.next-1, nextFirst)
	case last:
		res.reason = res.lastReason()
	}
	return Damage{
		File:         s.path,
		Offset:       res.end,
		Reason:       res.reason,
		TornTail:     last && !res.syncedLost(),
		Next:         res.next,
		Synced:       res.synced,
		RecordsAfter: res.after.records,
		FirstAfter:   res.after.first,
		LastAfter:    res.after.last,
	}, res.next, nil
}
