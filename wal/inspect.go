package wal

import (
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
// the end of the log or the first damage, which it returns. Zeros after the
// last record of the last segment are the end of the log, not damage; so
// are zeros ending an earlier segment if the next one starts with the
// record that follows (see Open). The error is
// for bad options, I/O errors and fn's errors. On a log being written, a
// record still being written may show as a torn tail.
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
	first, herr := decodeSegHeader(h)
	if herr != nil {
		torn := false
		if last {
			all := make([]byte, size)
			if _, err := f.ReadAt(all, 0); err != nil && size > 0 {
				return Damage{}, 0, fmt.Errorf("wal: inspect: read %s: %w", s.path, err)
			}
			torn = size < segHeaderSize || isZero(all)
		}
		return Damage{File: s.path, Reason: herr.Error(), TornTail: torn}, 0, nil
	}
	if first != s.first {
		return Damage{File: s.path, Reason: fmt.Sprintf("header says first record %d, name says %d", first, s.first)}, 0, nil
	}
	var fnErr error
	res, err := scanSegment(f, size, s.first, from, opts.MaxRecordSize, func(r Record) error {
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
	case res.kind == damageNone, last && res.kind == damageZeros:
		return Damage{}, res.next, nil
	case res.kind == damageZeros && res.next == nextFirst:
		return Damage{}, res.next, nil // zeros a roll's cut left
	case res.kind == damageZeros:
		res.reason = fmt.Sprintf("zeroed tail after record %d, but the next segment starts at record %d", res.next-1, nextFirst)
	}
	return Damage{
		File:     s.path,
		Offset:   res.end,
		Reason:   res.reason,
		TornTail: last && res.kind == damageTorn,
	}, res.next, nil
}
