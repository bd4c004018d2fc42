package filestore

import (
	"encoding/binary"
	"encoding/json"
	"hash/crc32"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
)

type nopMachine struct{}

func (nopMachine) Prepare(concord.TxID, json.RawMessage) participant.PrepareResult {
	return participant.PrepareResult{Vote: concord.VoteYes}
}
func (nopMachine) Commit(concord.TxID)       {}
func (nopMachine) Abort(concord.TxID)        {}
func (nopMachine) Snapshot() ([]byte, error) { return nil, nil }
func (nopMachine) Restore([]byte) error      { return nil }

func emptyStore() *Store {
	s := &Store{m: nopMachine{}, txs: map[concord.TxID]*txEntry{}, prepared: map[concord.TxID]struct{}{}}
	s.opts.Retain = 8
	return s
}

// FuzzDecodeSnapshot feeds arbitrary snapshot bodies, with a valid
// checksum so that decoding goes past it: never a panic, and a body that
// decodes re-encodes to one that decodes to the same tables.
func FuzzDecodeSnapshot(f *testing.F) {
	s := emptyStore()
	s.setPrepared("p1", 3)
	s.setDecided("c1", StateCommitted, 4, "")
	s.setDecided("a1", StateAborted, 5, "sold out")
	good := s.encodeSnapshot(5, []byte(`{"m":1}`))
	f.Add(good[len(snapMagic) : len(good)-4])
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		data := append([]byte(snapMagic), body...)
		data = binary.LittleEndian.AppendUint32(data, crc32.Checksum(data, castagnoli))
		seq, _ := binary.Uvarint(body)
		s := emptyStore()
		if err := s.decodeSnapshot(data, seq); err != nil {
			return
		}
		again := s.encodeSnapshot(seq, nil)
		s2 := emptyStore()
		if err := s2.decodeSnapshot(again, seq); err != nil {
			t.Fatalf("re-encoded snapshot does not decode: %v", err)
		}
		if len(s2.txs) != len(s.txs) || len(s2.prepared) != len(s.prepared) {
			t.Fatalf("round trip changed the tables: %d/%d -> %d/%d", len(s.txs), len(s.prepared), len(s2.txs), len(s2.prepared))
		}
	})
}

// FuzzDecodeRec: a record payload never panics the decoder, and what it
// decodes survives encoding again.
func FuzzDecodeRec(f *testing.F) {
	f.Add(encodeRec("tx-1", []byte(`{"take":1}`)))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, body, err := decodeRec(b)
		if err != nil {
			return
		}
		id2, body2, err := decodeRec(encodeRec(id, body))
		if err != nil || id2 != id || string(body2) != string(body) {
			t.Fatalf("%x: decoded %q %x, re-encoded and decoded %q %x %v", b, id, body, id2, body2, err)
		}
	})
}
