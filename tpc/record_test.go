package tpc

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/concordtx/concord"
)

// sampleRecords are one of each kind the coordinator writes.
func sampleRecords() []Record {
	return []Record{
		{Type: RecBegin, TxID: "tx1", Participants: []string{"flights", "hotels", "cars"}},
		{Type: RecBegin, TxID: "tx2", Participants: []string{"flights"}, OnePhase: true},
		{Type: RecCommit, TxID: "tx1", Participants: []string{"flights", "hotels", "cars"},
			Votes: []concord.Vote{concord.VoteYes, concord.VoteReadOnly, concord.VoteYes}, Outcome: concord.OutcomeCommitted},
		{Type: RecAbort, TxID: "tx3", Participants: []string{"flights", "hotels"},
			Votes: []concord.Vote{concord.VoteYes, concord.VoteNo}, Outcome: concord.OutcomeAborted, Reason: "hotels voted no: sold out ✈"},
		{Type: RecEnd, TxID: "tx1", Outcome: concord.OutcomeCommitted},
		{Type: RecEnd, TxID: concord.TxID("a.B_c:d-" + strings.Repeat("x", concord.MaxTxIDLen-8)), Outcome: concord.OutcomeAborted},
	}
}

func TestRecordRoundTrip(t *testing.T) {
	recs := sampleRecords()
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		recs = append(recs, randomRecord(rng))
	}
	// The largest record there can be, for SizeBound.
	largest := Record{Type: RecAbort, TxID: concord.TxID(strings.Repeat("x", concord.MaxTxIDLen)),
		Reason: strings.Repeat("é", MaxReasonLen/2), Outcome: concord.OutcomeAborted}
	for i := range MaxBranches {
		largest.Participants = append(largest.Participants, strings.Repeat("p", MaxParticipantLen-3)+strconv.Itoa(100+i))
		largest.Votes = append(largest.Votes, concord.VoteUnreachable)
	}
	recs = append(recs, largest)
	for _, r := range recs {
		b, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("marshal %+v: %v", r, err)
		}
		if len(b) > r.SizeBound() {
			t.Fatalf("%+v: %d bytes, SizeBound %d", r, len(b), r.SizeBound())
		}
		if a, err := r.AppendBinary([]byte("prefix")); err != nil || string(a) != "prefix"+string(b) {
			t.Fatalf("%+v: AppendBinary %x, %v; MarshalBinary %x", r, a, err, b)
		}
		var got Record
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatalf("unmarshal %+v: %v", r, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
		}
	}
}

func randomRecord(rng *rand.Rand) Record {
	r := Record{
		Type:     RecordType(1 + rng.IntN(4)),
		TxID:     concord.TxID("tx" + strings.Repeat("9", rng.IntN(50))),
		OnePhase: rng.IntN(2) == 0,
		Outcome:  concord.Outcome(rng.IntN(3)),
	}
	if rng.IntN(2) == 0 {
		r.Reason = strings.Repeat("é", rng.IntN(MaxReasonLen/2))
	}
	n := rng.IntN(20)
	for i := range n {
		r.Participants = append(r.Participants, strings.Repeat("p", 1+rng.IntN(MaxParticipantLen-3))+string(rune('a'+i)))
	}
	if n > 0 && rng.IntN(2) == 0 {
		for range n {
			r.Votes = append(r.Votes, concord.Vote(rng.IntN(6)))
		}
	}
	return r
}

// TestRecordIsSmall keeps the commit record of a three-participant
// transaction small enough for one log frame of a few dozen bytes.
func TestRecordIsSmall(t *testing.T) {
	b, err := sampleRecords()[2].MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 40 {
		t.Fatalf("commit record of 3 participants is %d bytes: % x", len(b), b)
	}
}

func TestRecordUnmarshalRejectsTruncation(t *testing.T) {
	for _, r := range sampleRecords() {
		b, _ := r.MarshalBinary()
		for i := range len(b) {
			var got Record
			if err := got.UnmarshalBinary(b[:i]); !errors.Is(err, ErrInvalid) {
				t.Fatalf("%s cut to %d of %d bytes: err %v, want ErrInvalid", r.Type, i, len(b), err)
			}
		}
		var got Record
		if err := got.UnmarshalBinary(append(bytes.Clone(b), 0)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("%s with a trailing byte: err %v", r.Type, err)
		}
	}
}

func TestRecordUnmarshalRejectsMalformed(t *testing.T) {
	good, _ := sampleRecords()[3].MarshalBinary() // abort tx3, 2 participants with votes
	mod := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	// Layout: [0]version [1]type [2]len(tx id)=3 [3:6]"tx3" [6]flags [7]outcome [8]len(reason)...
	type bad struct {
		b    []byte
		want string
	}
	cases := map[string]bad{
		"empty":                      {[]byte{}, "truncated before version"},
		"version 0":                  {mod(func(b []byte) []byte { b[0] = 0; return b }), "version 0"},
		"version 2":                  {mod(func(b []byte) []byte { b[0] = 2; return b }), "version 2"},
		"type 0":                     {mod(func(b []byte) []byte { b[1] = 0; return b }), "record type 0"},
		"type 5":                     {mod(func(b []byte) []byte { b[1] = 5; return b }), "record type 5"},
		"empty tx id":                {[]byte{1, 4, 0, 0, 0, 0, 0}, "bad transaction id: empty"},
		"bad tx id":                  {[]byte{1, 4, 3, 't', '/', '1', 0, 1, 0, 0}, "byte 1 is '/'"},
		"unknown flag":               {mod(func(b []byte) []byte { b[6] |= 0x80; return b }), "unknown flags"},
		"outcome 3":                  {mod(func(b []byte) []byte { b[7] = 3; return b }), "outcome 3"},
		"id length huge":             {[]byte{1, 4, 0xff, 0xff, 0xff, 0xff, 0x0f}, "exceeds the 0 bytes left"},
		"varint overflow":            {[]byte{1, 4, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, "bad transaction id length"},
		"non-minimal varint":         {[]byte{1, 4, 0x83, 0x00, 't', 'x', '1', 0, 1, 0, 0}, "bad transaction id length"},
		"count beyond input":         {[]byte{1, 4, 3, 't', 'x', '1', 0, 1, 0, 0xff, 0xff, 0x03}, "participant count 65535 exceeds"},
		"votes without participants": {[]byte{1, 4, 3, 't', 'x', '1', flagVotes, 1, 0, 0}, "votes flag with no participants"},
		"vote 6":                     {mod(func(b []byte) []byte { b[len(b)-1] = 6; return b }), "vote 6 of participant 1"},
		"non-UTF-8 reason":           {[]byte{1, 3, 3, 't', 'x', '1', 0, 2, 1, 0xff, 0}, "reason is not UTF-8"},
		"empty participant":          {[]byte{1, 1, 3, 't', 'x', '1', 0, 0, 0, 1, 0}, "empty participant name"},
		"oversized":                  {append(bytes.Clone(good), make([]byte, MaxRecordSize)...), "at most 65536"},
		"too many participants": {func() []byte {
			b := []byte{1, 1, 3, 't', 'x', '1', 0, 0, 0}
			b = binary.AppendUvarint(b, MaxBranches+1)
			for range MaxBranches + 1 {
				b = append(b, 1, 'p')
			}
			return b
		}(), "257 participants"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := Record{Type: RecEnd, TxID: "keep"}
			err := r.UnmarshalBinary(c.b)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want ErrInvalid naming %q", err, c.want)
			}
			if r.TxID != "keep" {
				t.Fatalf("a failed decode changed the record: %+v", r)
			}
		})
	}
}

func TestRecordMarshalRejectsInvalid(t *testing.T) {
	cases := map[string]Record{
		"no type":          {TxID: "tx1"},
		"bad tx id":        {Type: RecEnd, TxID: "tx 1"},
		"votes misaligned": {Type: RecCommit, TxID: "tx1", Participants: []string{"a", "b"}, Votes: []concord.Vote{concord.VoteYes}},
		"bad vote":         {Type: RecCommit, TxID: "tx1", Participants: []string{"a"}, Votes: []concord.Vote{9}},
		"long reason":      {Type: RecAbort, TxID: "tx1", Reason: strings.Repeat("x", MaxReasonLen+1)},
		"long participant": {Type: RecBegin, TxID: "tx1", Participants: []string{strings.Repeat("p", MaxParticipantLen+1)}},
		"bad outcome":      {Type: RecEnd, TxID: "tx1", Outcome: 7},
	}
	for name, r := range cases {
		if _, err := r.MarshalBinary(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: err %v, want ErrInvalid", name, err)
		}
		if b, err := r.AppendBinary([]byte("prefix")); !errors.Is(err, ErrInvalid) || string(b) != "prefix" {
			t.Errorf("%s: AppendBinary %q, %v; want the prefix alone and ErrInvalid", name, b, err)
		}
	}
}

// FuzzRecordUnmarshal feeds arbitrary bytes to the decoder: it must never
// panic, and whatever it accepts must encode back to exactly the same bytes
// (one encoding per record), so nothing is silently changed on a rewrite.
func FuzzRecordUnmarshal(f *testing.F) {
	for _, r := range sampleRecords() {
		b, err := r.MarshalBinary()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Record
		if err := r.UnmarshalBinary(b); err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		again, err := r.MarshalBinary()
		if err != nil {
			t.Fatalf("accepted %x but cannot encode %+v: %v", b, r, err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted %x, encodes back as %x", b, again)
		}
		if len(b) > r.SizeBound() {
			t.Fatalf("accepted %x: %d bytes, SizeBound %d", b, len(b), r.SizeBound())
		}
	})
}
