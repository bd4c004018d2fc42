package filestore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

// A snapshot file, Dir/snapshot-<seq>.snap, holds the store's state after
// log record seq: magic, uvarint seq, the prepared transactions (id, seq,
// varint deadline in Unix ms, encoded coordinator), the remembered
// decisions (id, state, seq, reason, varint deadline; soonest forgotten
// first), the Machine's snapshot, and a CRC32C (Castagnoli) of everything
// before it. Version 1 (snapMagicV1), still read, had no deadlines and no
// coordinators. It is written to a temporary
// name, synced, renamed and the directory synced, so a crash leaves either
// the old snapshot or the new one, never half of one.
const (
	snapMagic   = "concord-filestore-snapshot-2\n"
	snapMagicV1 = "concord-filestore-snapshot-1\n"
	snapPrefix  = "snapshot-"
	snapSuffix  = ".snap"
	tmpSuffix   = ".tmp"
	maxSnapSize = 1 << 30
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func snapName(seq uint64) string { return fmt.Sprintf("%s%020d%s", snapPrefix, seq, snapSuffix) }

// snapshotFiles lists the snapshots in dir by sequence number, newest last,
// and the names of leftover temporary files.
func (s *Store) snapshotFiles() (snaps []uint64, tmps []string, err error) {
	names, err := s.opts.FS.ReadDir(s.opts.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s: %w", s.opts.Dir, err)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, snapPrefix) {
			continue
		}
		if strings.HasSuffix(n, tmpSuffix) {
			tmps = append(tmps, n)
			continue
		}
		num, ok := strings.CutSuffix(strings.TrimPrefix(n, snapPrefix), snapSuffix)
		if !ok {
			continue
		}
		seq, err := strconv.ParseUint(num, 10, 64)
		if err != nil {
			continue
		}
		snaps = append(snaps, seq)
	}
	return snaps, tmps, nil // ReadDir sorts names, and the numbers are zero-padded
}

// restoreSnapshot loads the newest snapshot, if any, and returns the log
// sequence number it covers (0 without one).
func (s *Store) restoreSnapshot() (uint64, error) {
	snaps, tmps, err := s.snapshotFiles()
	if err != nil {
		return 0, err
	}
	for _, t := range tmps {
		s.opts.FS.Remove(filepath.Join(s.opts.Dir, t)) // an unfinished snapshot: never used
	}
	if len(snaps) == 0 {
		return 0, nil
	}
	seq := snaps[len(snaps)-1]
	name := filepath.Join(s.opts.Dir, snapName(seq))
	data, err := s.readFile(name)
	if err != nil {
		return 0, fmt.Errorf("read snapshot %s: %w", name, err)
	}
	if err := s.decodeSnapshot(data, seq); err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", name, err)
	}
	for _, old := range snaps[:len(snaps)-1] {
		s.opts.FS.Remove(filepath.Join(s.opts.Dir, snapName(old)))
	}
	return seq, nil
}

func (s *Store) readFile(name string) ([]byte, error) {
	f, err := s.opts.FS.OpenFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > maxSnapSize {
		return nil, fmt.Errorf("%w: %d bytes, over the limit of %d", ErrCorrupt, size, maxSnapSize)
	}
	buf := make([]byte, size)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

func appendString(b []byte, v string) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// snapTables is what a snapshot holds of the store's tables, taken under
// s.mu and encoded after it is released, so that prepares and decisions
// wait for a copy of the tables and not for their encoding.
type snapTables struct {
	prepared []txEntry // copies: a prepared entry becomes decided in place
	decided  []*txEntry
}

// snapshotTables copies the tables; s.mu is held. The decided entries are
// shared, not copied: an entry is never changed once it is in decided.
func (s *Store) snapshotTables() snapTables {
	t := snapTables{
		prepared: make([]txEntry, 0, len(s.prepared)),
		decided:  make([]*txEntry, 0, s.decided.n),
	}
	s.decided.each(func(e *txEntry) {
		if s.txs[e.id] == e {
			t.decided = append(t.decided, e)
		}
	})
	for _, e := range s.prepared {
		t.prepared = append(t.prepared, *e)
	}
	return t
}

// encodeSnapshot lays out the tables and machine state; s.mu is held.
func (s *Store) encodeSnapshot(seq uint64, machine []byte) []byte {
	return s.snapshotTables().encode(seq, machine)
}

// encode lays out the tables and the machine's state after record seq.
func (t snapTables) encode(seq uint64, machine []byte) []byte {
	b := make([]byte, 0, 64+len(machine)+len(t.prepared)*32+len(t.decided)*32)
	b = append(b, snapMagic...)
	b = binary.AppendUvarint(b, seq)
	b = binary.AppendUvarint(b, uint64(len(t.prepared)))
	for _, e := range t.prepared {
		b = appendString(b, string(e.id))
		b = binary.AppendUvarint(b, e.seq)
		b = binary.AppendVarint(b, e.deadline)
		b = appendString(b, e.coord)
	}
	b = binary.AppendUvarint(b, uint64(len(t.decided)))
	for _, e := range t.decided {
		b = appendString(b, string(e.id))
		b = append(b, byte(e.state))
		b = binary.AppendUvarint(b, e.seq)
		b = appendString(b, e.reason)
		b = binary.AppendVarint(b, e.deadline)
	}
	b = appendString(b, string(machine))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

type snapReader struct {
	b   []byte
	err error
}

func (r *snapReader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errors.New("truncated number")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *snapReader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = fmt.Errorf("length %d past the end", n)
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *snapReader) id() concord.TxID {
	id := concord.TxID(r.bytes())
	if r.err == nil {
		// The stored check, as for a log record.
		if err := concord.ValidateStoredTxID(id); err != nil {
			r.err = err
		}
	}
	return id
}

func (s *Store) decodeSnapshot(data []byte, wantSeq uint64) error {
	if len(data) < len(snapMagic)+4 || string(data[:len(snapMagic)]) != snapMagic && string(data[:len(snapMagicV1)]) != snapMagicV1 {
		return fmt.Errorf("%w: not a filestore snapshot", ErrCorrupt)
	}
	v1 := string(data[:len(snapMagicV1)]) == snapMagicV1
	// Version 1 kept no deadlines: its transactions get that of a PREPARE
	// that named none, from now.
	v1Deadline := s.opts.Retention.Admit(participant.PrepareInfo{}, s.opts.Now()).Deadline.UnixMilli()
	body, sum := data[:len(data)-4], binary.LittleEndian.Uint32(data[len(data)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	r := &snapReader{b: body[len(snapMagic):]}
	if seq := r.uvarint(); r.err == nil && seq != wantSeq {
		return fmt.Errorf("%w: covers record %d but is named for %d", ErrCorrupt, seq, wantSeq)
	}
	n := r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.id()
		seq := r.uvarint()
		deadline, coord := v1Deadline, ""
		if !v1 {
			deadline, coord = r.varint(), string(r.bytes())
		}
		if r.err == nil && s.txs[id] != nil {
			r.err = fmt.Errorf("transaction %s listed twice", id)
		}
		if r.err == nil {
			s.setPrepared(id, seq, deadline, coord)
		}
	}
	n = r.uvarint()
	for i := uint64(0); i < n && r.err == nil; i++ {
		id := r.id()
		if r.err != nil || len(r.b) == 0 {
			r.err = errors.New("truncated decision")
			break
		}
		st := TxState(r.b[0])
		r.b = r.b[1:]
		seq := r.uvarint()
		reason := string(r.bytes())
		deadline := v1Deadline
		if !v1 {
			deadline = r.varint()
		}
		if r.err == nil && st != StateCommitted && st != StateAborted {
			r.err = fmt.Errorf("decision of %s has state %d", id, st)
		}
		if r.err == nil && s.txs[id] != nil {
			r.err = fmt.Errorf("transaction %s listed twice", id)
		}
		if r.err == nil {
			s.setDecided(id, st, seq, reason, deadline)
		}
	}
	machine := r.bytes()
	if r.err == nil && len(r.b) != 0 {
		r.err = fmt.Errorf("%d bytes after the end", len(r.b))
	}
	if r.err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, r.err)
	}
	if err := s.m.Restore(machine); err != nil {
		return fmt.Errorf("restore machine: %w", err)
	}
	return nil
}

func (s *Store) backgroundSnapshot() {
	defer s.snapWG.Done()
	s.Snapshot() // a failure breaks the store; calls report it
}

// Snapshot writes a snapshot of the current state now and compacts the log
// behind it. The store takes snapshots by itself every SnapshotEvery
// records; this is for tests and tools. A failed write breaks the store.
func (s *Store) Snapshot() error {
	s.snapMu.Lock()
	defer s.snapMu.Unlock()
	defer func() {
		s.mu.Lock()
		s.snapping = false
		s.mu.Unlock()
	}()
	s.mu.Lock()
	if s.err != nil {
		defer s.mu.Unlock()
		return s.err
	}
	s.sinceSnap = 0 // a failed snapshot is retried after as many records again
	machine, err := s.m.Snapshot()
	if err != nil {
		s.mu.Unlock()
		return fmt.Errorf("snapshot machine: %w", err)
	}
	seq := s.log.LastSeq()
	tables := s.snapshotTables()
	s.mu.Unlock()
	data := tables.encode(seq, machine)

	// Every record the snapshot reflects must be durable before it is, or
	// a crash could leave a snapshot ahead of a shorter log.
	if err := s.log.Sync(); err != nil {
		return s.failed(err)
	}
	if err := s.writeSnapshot(seq, data); err != nil {
		// The log is intact: the store goes on, and the next snapshot
		// tries again.
		return err
	}
	s.mu.Lock()
	prev := s.lastSnap
	s.lastSnap = seq
	s.snapshots++
	s.mu.Unlock()
	if prev != seq && prev != 0 {
		if err := s.opts.FS.Remove(filepath.Join(s.opts.Dir, snapName(prev))); err == nil {
			s.opts.FS.SyncDir(s.opts.Dir)
		}
	}
	if err := s.log.Compact(seq + 1); err != nil {
		return fmt.Errorf("compact log: %w", err)
	}
	return nil
}

func (s *Store) failed(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail(err)
	return s.err
}

// writeSnapshot writes data as the snapshot for seq: temporary file, sync,
// rename, sync the directory.
func (s *Store) writeSnapshot(seq uint64, data []byte) error {
	final := filepath.Join(s.opts.Dir, snapName(seq))
	tmp := final + tmpSuffix
	s.opts.FS.Remove(tmp)
	f, err := s.opts.FS.Create(tmp)
	if err != nil {
		return fmt.Errorf("create snapshot: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync snapshot: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close snapshot: %w", err)
	}
	if err := s.opts.FS.Rename(tmp, final); err != nil {
		return fmt.Errorf("rename snapshot: %w", err)
	}
	if err := s.opts.FS.SyncDir(s.opts.Dir); err != nil {
		return fmt.Errorf("sync %s: %w", s.opts.Dir, err)
	}
	return nil
}
