package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord/wal"
)

// makeLog writes payloads as records of type 7 to a new log and returns its
// directory and last segment.
func makeLog(t *testing.T, payloads ...[]byte) (string, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	l, err := wal.Open(wal.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range payloads {
		if _, err := l.Append(7, p); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.wal"))
	return dir, segs[len(segs)-1]
}

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestLogDumpReadable(t *testing.T) {
	long := bytes.Repeat([]byte("z"), 500)
	dir, _ := makeLog(t, []byte(`{"tx": "t1"}`), []byte("hello"), []byte{0, 1, 0xfe}, long)
	code, out, errs := runCmd("log", "dump", dir)
	if code != 0 || errs != "" {
		t.Fatalf("exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{`{"tx":"t1"}`, "hello", "hex:0001fe", "... (500 bytes)", "4 records, 1 to 4"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, string(long)) {
		t.Error("a long payload was not truncated")
	}
	// --from, after the directory.
	code, out, _ = runCmd("log", "dump", dir, "--from", "3")
	if code != 0 || strings.Contains(out, "hello") || !strings.Contains(out, "2 records, 3 to 4") {
		t.Fatalf("--from 3: exit %d:\n%s", code, out)
	}
}

func TestLogDumpJSON(t *testing.T) {
	dir, _ := makeLog(t, []byte(`{"tx":"t1"}`), []byte("hello"), []byte{0, 1, 0xfe})
	code, out, _ := runCmd("log", "dump", "--json", dir)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), out)
	}
	var recs []map[string]any
	for _, ln := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(ln), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", ln, err)
		}
		recs = append(recs, m)
	}
	if recs[0]["seq"] != 1.0 || recs[0]["type"] != 7.0 || recs[0]["json"].(map[string]any)["tx"] != "t1" {
		t.Errorf("record 1 = %v", recs[0])
	}
	if recs[1]["text"] != "hello" || recs[2]["hex"] != "0001fe" || recs[2]["size"] != 3.0 {
		t.Errorf("records 2, 3 = %v, %v", recs[1], recs[2])
	}
}

func TestLogDumpDamage(t *testing.T) {
	// A torn tail: exit 1, naming file and offset; records before it shown.
	// The format (see wal/format.go): a 32-byte segment header; each
	// Append writes a 28-byte mark, then its record (20-byte header and
	// payload); Close ends the segment with a mark.
	const seg1, mark, frame = 32, 28, 20
	rec3 := seg1 + 2*mark + frame + 3 + frame + 3 + mark // record 3's frame
	dir, seg := makeLog(t, []byte("one"), []byte("two"), []byte("three"))
	st, _ := os.Stat(seg)
	if err := os.Truncate(seg, st.Size()-mark-2); err != nil { // into record 3
		t.Fatal(err)
	}
	code, out, errs := runCmd("log", "dump", dir)
	if code != 1 || !strings.Contains(out, "two") || strings.Contains(out, "three") {
		t.Fatalf("torn: exit %d, out:\n%s", code, out)
	}
	if !strings.Contains(errs, seg) || !strings.Contains(errs, "torn tail") || !strings.Contains(errs, fmt.Sprintf("offset %d", rec3)) {
		t.Fatalf("torn: stderr %q does not name file, offset and kind", errs)
	}
	// Dump repairs nothing.
	if st2, _ := os.Stat(seg); st2.Size() != st.Size()-mark-2 {
		t.Fatal("dump changed the segment")
	}
	code, out, _ = runCmd("log", "dump", "--json", dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var d struct {
		Damage struct {
			File     string
			Offset   int64
			TornTail bool `json:"torn_tail"`
		}
	}
	if code != 1 || json.Unmarshal([]byte(lines[len(lines)-1]), &d) != nil || d.Damage.File != seg || !d.Damage.TornTail || d.Damage.Offset != int64(rec3) {
		t.Fatalf("json torn: exit %d, last line %q", code, lines[len(lines)-1])
	}

	// Corruption in the middle: exit 1, not a torn tail.
	dir, seg = makeLog(t, []byte("one"), []byte("two"), []byte("three"))
	b, _ := os.ReadFile(seg)
	b[seg1+mark+frame+1] ^= 0xff // payload of record 1, which later marks say was synced
	os.WriteFile(seg, b, 0o644)
	code, out, errs = runCmd("log", "dump", dir)
	if code != 1 || !strings.Contains(errs, fmt.Sprintf("offset %d", seg1+mark)) || !strings.Contains(errs, "open would refuse") || !strings.Contains(out, "no records") {
		t.Fatalf("corrupt: exit %d, out %q, stderr %q", code, out, errs)
	}
}

func TestLogDumpUsage(t *testing.T) {
	dir, _ := makeLog(t, []byte("x"))
	file := filepath.Join(dir, "00000000000000000001.wal")
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"log"}, 2, "usage: concord log dump"},
		{[]string{"log", "check"}, 2, "want one log directory"},
		{[]string{"log", "salvage", dir}, 2, "want DIR and NEWDIR"},
		{[]string{"log", "salvage", dir, dir}, 2, "NEWDIR must differ"},
		{[]string{"log", "check", filepath.Join(dir, "nope")}, 2, "no such directory"},
		{[]string{"log", "check", t.TempDir()}, 1, "holds no log segments"},
		{[]string{"log", "frob"}, 2, `unknown subcommand "frob"`},
		{[]string{"log", "dump"}, 2, "missing log directory"},
		{[]string{"log", "dump", "--bogus", dir}, 2, "flag provided but not defined: -bogus"},
		{[]string{"log", "dump", "--from", "-1", dir}, 2, "invalid value"},
		{[]string{"log", "dump", dir, dir}, 2, "one log directory expected"},
		{[]string{"log", "dump", filepath.Join(dir, "nope")}, 2, "no such directory"},
		{[]string{"log", "dump", file}, 2, "not a directory"},
		{[]string{"log", "dump", "--max-record-size", "0", dir}, 2, "--max-record-size 0"},
		{[]string{"log", "dump", t.TempDir()}, 1, "holds no log segments"},
		{[]string{"log", "dump", "-h"}, 0, "usage: concord log dump"},
	} {
		code, _, errs := runCmd(tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", tc.args, code, errs, tc.code, tc.want)
		}
	}
}

// TestLogCheckAndSalvage: a log that refuses to open (a synced record
// damaged) is checked, showing the damage and what a salvage loses, and
// salvaged into a new directory that opens with the records before the
// damage and the same sequence numbers; the original stays as it was.
func TestLogCheckAndSalvage(t *testing.T) {
	dir, seg := makeLog(t, []byte("one"), []byte("two"), []byte("three"), []byte("four"))
	clean := filepath.Join(t.TempDir(), "clean")
	if code, out, errs := runCmd("log", "check", dir); code != 0 || !strings.Contains(out, "no damage") {
		t.Fatalf("check of a good log: exit %d, %q %q", code, out, errs)
	}
	if code, out, errs := runCmd("log", "salvage", dir, clean); code != 0 || !strings.Contains(out, "salvaged to") {
		t.Fatalf("salvage of a good log: exit %d, %q %q", code, out, errs)
	}
	b, _ := os.ReadFile(seg)
	at := bytes.Index(b, []byte("two")) - 20 // record 2's frame
	b[at+22] ^= 0x01
	os.WriteFile(seg, b, 0o600)
	if _, err := wal.Open(wal.Options{Dir: dir}); err == nil {
		t.Fatal("the damaged log opened")
	}
	code, out, errs := runCmd("log", "check", dir)
	for _, want := range []string{fmt.Sprintf("%s at offset %d", seg, at), "open refuses", "kept up to the damage: 1 records", "lost from record 2 on: 2 records still readable", "up to record 4"} {
		if code != 1 || !strings.Contains(out, want) {
			t.Fatalf("check: exit %d, output lacks %q:\n%s%s", code, want, out, errs)
		}
	}
	code, out, _ = runCmd("log", "check", "--json", dir)
	var c struct {
		Verdict string
		Damage  struct {
			File   string
			Offset int64
			Next   uint64 `json:"next_record"`
		}
		Kept struct{ Records int }
		Lost struct {
			From     uint64
			Readable int
		}
	}
	if code != 1 || json.Unmarshal([]byte(out), &c) != nil || c.Verdict != "refused" || c.Damage.File != seg ||
		c.Damage.Offset != int64(at) || c.Damage.Next != 2 || c.Kept.Records != 1 || c.Lost.From != 2 || c.Lost.Readable != 2 {
		t.Fatalf("check --json: exit %d, %s", code, out)
	}
	newDir := filepath.Join(t.TempDir(), "salvaged")
	code, out, errs = runCmd("log", "salvage", "--json", dir, newDir)
	if code != 1 || !strings.Contains(out, `"salvaged_to"`) {
		t.Fatalf("salvage: exit %d, %q %q", code, out, errs)
	}
	if after, _ := os.ReadFile(seg); !bytes.Equal(after, b) {
		t.Fatal("salvage changed the original")
	}
	l, err := wal.Open(wal.Options{Dir: newDir})
	if err != nil {
		t.Fatalf("open of the salvaged log: %v", err)
	}
	var got []wal.Record
	l.Replay(0, func(r wal.Record) error { got = append(got, r); return nil })
	if len(got) != 1 || got[0].Seq != 1 || string(got[0].Payload) != "one" {
		t.Fatalf("salvaged log holds %v", got)
	}
	if seq, err := l.Append(7, []byte("next")); err != nil || seq != 2 {
		t.Fatalf("append to the salvaged log = %d, %v", seq, err)
	}
	l.Close()
	if code, _, errs := runCmd("log", "salvage", dir, newDir); code != 1 || !strings.Contains(errs, "not empty") {
		t.Fatalf("salvage into a non-empty directory: exit %d, %q", code, errs)
	}
}
