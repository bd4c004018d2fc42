package filestore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wal"
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
	s := &Store{m: nopMachine{}, txs: map[concord.TxID]*txEntry{}, prepared: map[concord.TxID]*txEntry{}}
	s.opts.Retention = participant.DefaultRetention
	s.opts.Now = func() time.Time { return time.UnixMilli(1_796_688_000_000) }
	return s
}

// FuzzDecodeSnapshot feeds arbitrary snapshot bodies, with a valid
// checksum so that decoding goes past it: never a panic, and a body that
// decodes re-encodes to one that decodes to the same tables.
func FuzzDecodeSnapshot(f *testing.F) {
	s := emptyStore()
	s.setPrepared("p1", 3, 1_796_688_000_000, `{"urls":["http://127.0.0.1:7070"]}`)
	s.setDecided("c1", StateCommitted, 4, "", 1_796_688_000_001)
	s.setDecided("a1", StateAborted, 5, "sold out", 1_796_688_000_002)
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

// TestSnapshotListsEachTransactionOnce checks that a snapshot taken after
// some decisions were forgotten lists each remembered transaction once and
// decodes to the same tables (deadlines and coordinators included), and
// that one listing a transaction twice is corrupt.
func TestSnapshotListsEachTransactionOnce(t *testing.T) {
	s := emptyStore()
	seq := uint64(0)
	for i := range 20 {
		id := concord.TxID(fmt.Sprintf("t%d", i))
		seq++
		s.setPrepared(id, seq, int64(1_796_688_000_000+i*1000), `{"urls":["http://c`+fmt.Sprint(i%2)+`"]}`)
		if i%3 != 0 {
			seq++
			s.setDecided(id, StateCommitted, seq, "", int64(1_796_688_000_000+i*1000))
		}
	}
	s.setDecided("never-prepared", StateAborted, seq+1, "aborted before prepare", 1_796_688_100_000)
	// The first ten seconds of deadlines are past deadline + skew: forgotten.
	s.forgetDue(time.UnixMilli(1_796_688_010_000).Add(participant.DefaultRetention.ClockSkew))
	data := s.encodeSnapshot(seq+1, nil)
	s2 := emptyStore()
	if err := s2.decodeSnapshot(data, seq+1); err != nil {
		t.Fatal(err)
	}
	if len(s.txs) != 20-6+1 || len(s2.txs) != len(s.txs) || len(s2.prepared) != len(s.prepared) || s2.decided.n != len(s.txs)-len(s.prepared) {
		t.Fatalf("decoded %d/%d/%d, want %d/%d/%d", len(s2.txs), len(s2.prepared), s2.decided.n,
			len(s.txs), len(s.prepared), len(s.txs)-len(s.prepared))
	}
	for id, e := range s.txs {
		if e2 := s2.txs[id]; e2 == nil || *e2 != *e {
			t.Fatalf("%s: decoded %+v, want %+v", id, e2, e)
		}
	}

	// The same decision twice.
	twice := emptyStore()
	twice.setDecided("x", StateCommitted, 1, "", 1)
	twice.decided.add(twice.txs["x"], time.UnixMilli(1))
	if err := emptyStore().decodeSnapshot(twice.encodeSnapshot(1, nil), 1); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a snapshot listing a decision twice decoded: %v", err)
	}
	// Prepared and decided at once.
	both := emptyStore()
	both.setPrepared("x", 1, 1, "")
	both.txs["x"] = &txEntry{id: "x", state: StateCommitted, seq: 2} // prepared["x"] is the other entry
	both.decided.add(both.txs["x"], time.UnixMilli(1))
	if err := emptyStore().decodeSnapshot(both.encodeSnapshot(2, nil), 2); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a snapshot listing a transaction prepared and decided decoded: %v", err)
	}
}

// FuzzDecodeRecordBodies: the bodies of the records that carry a deadline
// never panic their decoders, and what decodes survives encoding again.
func FuzzDecodeRecordBodies(f *testing.F) {
	f.Add(appendPreparedBody(nil, 1_796_688_000_000, `{"urls":["http://127.0.0.1:7070"]}`, []byte(`{"take":1}`)))
	f.Add(appendDeadlineBody(nil, -5, "aborted before prepare"))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, coord, payload, err := decodePreparedBody(b); err == nil {
			d2, coord2, payload2, err := decodePreparedBody(appendPreparedBody(nil, d, coord, payload))
			if err != nil || d2 != d || coord2 != coord || string(payload2) != string(payload) {
				t.Fatalf("%x: prepared body %d %q %x, again %d %q %x %v", b, d, coord, payload, d2, coord2, payload2, err)
			}
		}
		if d, rest, err := decodeDeadlineBody(b); err == nil {
			d2, rest2, err := decodeDeadlineBody(appendDeadlineBody(nil, d, rest))
			if err != nil || d2 != d || string(rest2) != string(rest) {
				t.Fatalf("%x: body %d %x, again %d %x %v", b, d, rest, d2, rest2, err)
			}
		}
	})
}

// TestReplayOlderRecords: records of the types written before deadlines
// were kept replay, their transactions given the deadline of a PREPARE that
// named none from the time of opening; a PREPARED record after the decision
// of the same id (written once it was forgotten) starts it afresh.
func TestReplayOlderRecords(t *testing.T) {
	s := emptyStore()
	s.loading = true
	now := s.opts.Now()
	recs := []wal.Record{
		{Seq: 1, Type: recPrepared, Payload: encodeRec("p", []byte(`{}`))},
		{Seq: 2, Type: recOnePhase, Payload: encodeRec("o", []byte(`{}`))},
		{Seq: 3, Type: recAbort, Payload: encodeRec("a", []byte("aborted before prepare"))},
		{Seq: 4, Type: recPrepared2, Payload: encodeRec("n", appendPreparedBody(nil, now.Add(time.Second).UnixMilli(), `{"urls":["http://c"]}`, []byte(`{}`)))},
		{Seq: 5, Type: recAbort2, Payload: encodeRec("n", appendDeadlineBody(nil, now.Add(time.Second).UnixMilli(), "aborted"))},
		{Seq: 6, Type: recPrepared2, Payload: encodeRec("n", appendPreparedBody(nil, now.Add(time.Hour).UnixMilli(), "", []byte(`{}`)))},
	}
	for _, r := range recs {
		if err := s.apply(r); err != nil {
			t.Fatalf("record %d: %v", r.Seq, err)
		}
	}
	s.loading = false
	want := now.Add(participant.DefaultRetention.MaxLifetime).UnixMilli()
	for _, id := range []concord.TxID{"p", "o", "a"} {
		if e := s.txs[id]; e == nil || e.deadline != want {
			t.Fatalf("%s: %+v, want deadline %d", id, e, want)
		}
	}
	if e := s.txs["n"]; e == nil || e.state != StatePrepared || e.deadline != now.Add(time.Hour).UnixMilli() {
		t.Fatalf("n prepared again: %+v", e)
	}
	if err := s.apply(wal.Record{Seq: 7, Type: recPrepared2, Payload: encodeRec("n", appendPreparedBody(nil, 0, "", nil))}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("a prepare of a prepared transaction = %v, want ErrCorrupt", err)
	}
}
