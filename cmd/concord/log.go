package main

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal"
)

func init() {
	register("log", "inspect, check or salvage a write-ahead log directory (log dump|check|salvage)", runLog)
}

// Exit statuses of concord log.
const (
	logOK      = 0
	logDamaged = 1 // the log is damaged, or could not be read
	logUsage   = 2
)

// dumpTextMax bounds how much of a payload the readable listing shows.
const dumpTextMax = 96

func logUsageText(w io.Writer) {
	fmt.Fprintln(w, "usage: concord log dump [--json] [--from N] DIR")
	fmt.Fprintln(w, "       concord log check [--json] DIR")
	fmt.Fprintln(w, "       concord log salvage [--json] DIR NEWDIR")
	fmt.Fprintln(w, "dump prints the records of the log in DIR without locking or repairing it,")
	fmt.Fprintln(w, "and where and why reading would stop on damage.")
	fmt.Fprintln(w, "check says whether the log opens, and if not where it is damaged and what")
	fmt.Fprintln(w, "a salvage would lose. salvage copies the log up to its damage into NEWDIR")
	fmt.Fprintln(w, "(which must not exist or be empty), never changing DIR, and says what is lost.")
	fmt.Fprintln(w, "See docs/operations.md, \"A log that refuses to open\".")
	fmt.Fprintln(w, "Exit status: 0 whole log read (or salvaged whole), 1 damage found, records")
	fmt.Fprintln(w, "lost or read error, 2 usage error.")
}

func runLog(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		logUsageText(stderr)
		return logUsage
	}
	switch args[0] {
	case "dump":
		return runLogDump(args[1:], stdout, stderr)
	case "check":
		return runLogCheck(args[1:], stdout, stderr, false)
	case "salvage":
		return runLogCheck(args[1:], stdout, stderr, true)
	case "-h", "--help", "help":
		logUsageText(stderr)
		return logOK
	}
	fmt.Fprintf(stderr, "concord log: unknown subcommand %q\n", args[0])
	logUsageText(stderr)
	return logUsage
}

func runLogDump(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("concord log dump", flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print one JSON object per record (and one for damage)")
	from := fset.Uint64("from", 0, "print only records with sequence number `N` or above")
	maxRec := fset.Int("max-record-size", wal.DefaultMaxRecordSize, "accepted for older scripts; reading is bounded by the format, not by this `BYTES`")
	fset.Usage = func() {
		logUsageText(stderr)
		fset.PrintDefaults()
	}
	// Flags may come before or after DIR.
	dirs, err := parseInterleaved(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return logOK
		}
		return logUsage
	}
	fail := failer("concord log dump", asJSON, stdout, stderr)
	switch {
	case len(dirs) == 0:
		logUsageText(stderr)
		return fail(logUsage, "missing log directory")
	case len(dirs) > 1:
		return fail(logUsage, "one log directory expected, got %d: %s", len(dirs), strings.Join(dirs, " "))
	}
	dir := dirs[0]
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(logUsage, "%s: no such directory", dir)
		}
		return fail(logUsage, "%v", err)
	} else if !st.IsDir() {
		return fail(logUsage, "%s: not a directory", dir)
	}
	if *maxRec < 1 {
		return fail(logUsage, "--max-record-size %d: want a positive number of bytes", *maxRec)
	}

	p := &dumpPrinter{w: stdout, json: *asJSON}
	damage, err := wal.Inspect(wal.Options{Dir: dir, MaxRecordSize: *maxRec}, *from, p.record)
	if err != nil {
		return fail(logDamaged, "%v", err)
	}
	if p.err != nil {
		return fail(logDamaged, "write output: %v", p.err)
	}
	if err := p.end(dir, damage); err != nil {
		return fail(logDamaged, "write output: %v", err)
	}
	if damage.Damaged() {
		if !*asJSON {
			fmt.Fprintf(stderr, "concord log dump: damage: %v\n", damage)
		}
		return logDamaged
	}
	if p.count == 0 && p.segmentsMissing(dir) {
		return fail(logDamaged, "%s holds no log segments", dir)
	}
	return logOK
}

// dumpPrinter prints records as they are read.
type dumpPrinter struct {
	w         io.Writer
	json      bool
	count     int
	first     uint64
	last      uint64
	err       error
	enc       *json.Encoder
	headerOut bool
}

// dumpRecord is the JSON form of one record. Exactly one of JSON, Text and
// Hex holds the payload: JSON if it is valid JSON, Text if it is printable
// UTF-8, Hex otherwise.
type dumpRecord struct {
	Seq  uint64 `json:"seq"`
	Type uint8  `json:"type"`
	Size int    `json:"size"`
	// Record is the entry decoded as a coordinator or file store record,
	// when it is one.
	Record string          `json:"record,omitempty"`
	JSON   json.RawMessage `json:"json,omitempty"`
	Text   *string         `json:"text,omitempty"`
	Hex    *string         `json:"hex,omitempty"`
}

// dumpDamage is the JSON form of damage: the last line of a damaged log's dump.
type dumpDamage struct {
	Damage struct {
		File     string `json:"file"`
		Offset   int64  `json:"offset"`
		Reason   string `json:"reason"`
		TornTail bool   `json:"torn_tail"`
	} `json:"damage"`
}

func (p *dumpPrinter) record(r wal.Record) error {
	if p.count == 0 {
		p.first = r.Seq
	}
	p.count++
	p.last = r.Seq
	if p.json {
		if p.enc == nil {
			p.enc = json.NewEncoder(p.w)
		}
		d := dumpRecord{Seq: r.Seq, Type: r.Type, Size: len(r.Payload)}
		d.Record, _ = describeEntry(r)
		switch {
		case len(r.Payload) > 0 && json.Valid(r.Payload):
			d.JSON = compactJSON(r.Payload)
		case printable(r.Payload):
			s := string(r.Payload)
			d.Text = &s
		default:
			s := hex.EncodeToString(r.Payload)
			d.Hex = &s
		}
		p.err = p.enc.Encode(d)
		return p.err
	}
	if !p.headerOut {
		p.headerOut = true
		if _, p.err = fmt.Fprintf(p.w, "%10s  %4s  %8s  %s\n", "SEQ", "TYPE", "BYTES", "PAYLOAD"); p.err != nil {
			return p.err
		}
	}
	shown, ok := describeEntry(r)
	if !ok {
		shown = showPayload(r.Payload)
	}
	_, p.err = fmt.Fprintf(p.w, "%10d  %4d  %8d  %s\n", r.Seq, r.Type, len(r.Payload), shown)
	return p.err
}

// describeEntry decodes a record of the logs Concord itself writes: the
// coordinator's, then a participant file store's.
func describeEntry(r wal.Record) (string, bool) {
	if s, ok := coordinator.DescribeLogEntry(r.Type, r.Payload); ok {
		return s, true
	}
	return filestore.DescribeLogEntry(r.Type, r.Payload)
}

// end prints the summary (readable form; damage goes to stderr) or the
// damage object (JSON form).
func (p *dumpPrinter) end(dir string, d wal.Damage) error {
	if p.json {
		if !d.Damaged() {
			return nil
		}
		var out dumpDamage
		out.Damage.File, out.Damage.Offset, out.Damage.Reason, out.Damage.TornTail = d.File, d.Offset, d.Reason, d.TornTail
		if p.enc == nil {
			p.enc = json.NewEncoder(p.w)
		}
		return p.enc.Encode(out)
	}
	var err error
	if p.count == 0 {
		_, err = fmt.Fprintf(p.w, "%s: no records\n", dir)
	} else {
		_, err = fmt.Fprintf(p.w, "%s: %d records, %d to %d\n", dir, p.count, p.first, p.last)
	}
	return err
}

// segmentsMissing reports whether dir holds no segment file at all.
func (p *dumpPrinter) segmentsMissing(dir string) bool {
	names, err := wal.OSFS{}.ReadDir(dir)
	if err != nil {
		return true
	}
	for _, n := range names {
		if strings.HasSuffix(n, ".wal") {
			return false
		}
	}
	return true
}

// showPayload renders a payload for people: as text if it is printable
// UTF-8 (JSON included), else as hex, cut to about dumpTextMax characters.
func showPayload(b []byte) string {
	if len(b) == 0 {
		return "(empty)"
	}
	if printable(b) {
		s := string(b)
		if json.Valid(b) {
			s = string(compactJSON(b))
		}
		if utf8.RuneCountInString(s) <= dumpTextMax {
			return s
		}
		r := []rune(s)
		return fmt.Sprintf("%s... (%d bytes)", string(r[:dumpTextMax]), len(b))
	}
	if len(b) <= dumpTextMax/2 {
		return "hex:" + hex.EncodeToString(b)
	}
	return fmt.Sprintf("hex:%s... (%d bytes)", hex.EncodeToString(b[:dumpTextMax/2]), len(b))
}

// compactJSON removes insignificant space from valid JSON b.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// printable reports whether b is valid UTF-8 without control characters
// other than tab.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r != '\t' && !unicode.IsPrint(r) && r != ' ' {
			return false
		}
	}
	return true
}

// logCheckOut is the JSON form of concord log check and salvage.
type logCheckOut struct {
	Dir     string `json:"dir"`
	Verdict string `json:"verdict"` // "ok", "torn_tail" (Open cuts it), "refused" (Open refuses)
	// SyncFailed is true if a note of an earlier write or sync failure is
	// in the directory: Open cuts what follows the point it names.
	SyncFailed bool `json:"sync_failed,omitempty"`
	Damage     *struct {
		File     string `json:"file"`
		Offset   int64  `json:"offset"`
		Reason   string `json:"reason"`
		TornTail bool   `json:"torn_tail"`
		Next     uint64 `json:"next_record"`
		Synced   uint64 `json:"synced_up_to"`
	} `json:"damage,omitempty"`
	Kept struct {
		Records int    `json:"records"`
		First   uint64 `json:"first,omitempty"`
		Last    uint64 `json:"last,omitempty"`
	} `json:"kept"`
	Lost struct {
		From     uint64   `json:"from,omitempty"`     // first record not kept (0: none)
		Readable int      `json:"readable"`           // records after the damage that can still be read
		Last     uint64   `json:"last,omitempty"`     // the last of them
		Segments []string `json:"segments,omitempty"` // later segments not kept
	} `json:"lost"`
	Salvaged string   `json:"salvaged_to,omitempty"`
	Files    []string `json:"files,omitempty"`
}

// runLogCheck is concord log check (salvage false) and concord log salvage.
func runLogCheck(args []string, stdout, stderr io.Writer, salvage bool) int {
	name := "check"
	if salvage {
		name = "salvage"
	}
	fset := flag.NewFlagSet("concord log "+name, flag.ContinueOnError)
	fset.SetOutput(stderr)
	asJSON := fset.Bool("json", false, "print one JSON object")
	fset.Usage = func() {
		logUsageText(stderr)
		fset.PrintDefaults()
	}
	pos, err := parseInterleaved(fset, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return logOK
		}
		return logUsage
	}
	fail := func(status int, format string, a ...any) int {
		fmt.Fprintf(stderr, "concord log "+name+": "+format+"\n", a...)
		return status
	}
	want := 1
	if salvage {
		want = 2
	}
	if len(pos) != want {
		logUsageText(stderr)
		if salvage {
			return fail(logUsage, "want DIR and NEWDIR, got %d arguments", len(pos))
		}
		return fail(logUsage, "want one log directory, got %d arguments", len(pos))
	}
	dir := pos[0]
	if st, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fail(logUsage, "%s: no such directory", dir)
		}
		return fail(logUsage, "%v", err)
	} else if !st.IsDir() {
		return fail(logUsage, "%s: not a directory", dir)
	}
	if (&dumpPrinter{}).segmentsMissing(dir) {
		return fail(logDamaged, "%s holds no log segments", dir)
	}
	dst := ""
	if salvage {
		dst = pos[1]
		if abs1, err1 := filepath.Abs(dir); err1 == nil {
			if abs2, err2 := filepath.Abs(dst); err2 == nil && abs1 == abs2 {
				return fail(logUsage, "NEWDIR must differ from DIR")
			}
		}
	}
	rep, err := wal.Salvage(wal.Options{Dir: dir}, dst)
	if err != nil {
		return fail(logDamaged, "%v", err)
	}
	out := logCheckOut{Dir: dir, Verdict: "ok", Salvaged: dst, Files: rep.Files}
	_, serr := os.Stat(filepath.Join(dir, wal.SyncFailedFile))
	out.SyncFailed = serr == nil
	out.Kept.Records, out.Kept.First, out.Kept.Last = rep.Copied, rep.First, rep.Last
	out.Lost.From, out.Lost.Readable, out.Lost.Last, out.Lost.Segments = rep.LostFrom, rep.LostReadable, rep.LostLast, rep.LostSegments
	if d := rep.Damage; d.Damaged() {
		out.Verdict = "refused"
		if d.TornTail {
			out.Verdict = "torn_tail"
		}
		out.Damage = &struct {
			File     string `json:"file"`
			Offset   int64  `json:"offset"`
			Reason   string `json:"reason"`
			TornTail bool   `json:"torn_tail"`
			Next     uint64 `json:"next_record"`
			Synced   uint64 `json:"synced_up_to"`
		}{d.File, d.Offset, d.Reason, d.TornTail, d.Next, d.Synced}
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(out); err != nil {
			return fail(logDamaged, "write output: %v", err)
		}
	} else {
		printCheck(stdout, out, rep)
	}
	if rep.Damage.Damaged() {
		return logDamaged
	}
	return logOK
}

func printCheck(w io.Writer, out logCheckOut, rep wal.SalvageReport) {
	switch out.Verdict {
	case "ok":
		fmt.Fprintf(w, "%s: no damage; open keeps every record (%d records", out.Dir, rep.Copied)
		if rep.Copied > 0 {
			fmt.Fprintf(w, ", %d to %d", rep.First, rep.Last)
		}
		fmt.Fprintln(w, ")")
	default:
		d := rep.Damage
		fmt.Fprintf(w, "damage: %s at offset %d: %s\n", d.File, d.Offset, d.Reason)
		if out.Verdict == "torn_tail" {
			fmt.Fprintln(w, "verdict: a torn tail (records never synced); open cuts it off, keeps a copy beside the segment, and goes on")
		} else {
			fmt.Fprintln(w, "verdict: open refuses the log: a record that was synced is damaged, or the segments do not follow one another")
		}
		fmt.Fprintf(w, "kept up to the damage: %d records", rep.Copied)
		if rep.Copied > 0 {
			fmt.Fprintf(w, ", %d to %d", rep.First, rep.Last)
		}
		fmt.Fprintln(w)
		fmt.Fprintf(w, "lost from record %d on: %d records still readable after the damage", rep.LostFrom, rep.LostReadable)
		if rep.LostReadable > 0 {
			fmt.Fprintf(w, " (up to record %d)", rep.LostLast)
		}
		fmt.Fprintln(w, ", and any record that cannot be read")
		for _, s := range rep.LostSegments {
			fmt.Fprintf(w, "  not kept: %s\n", s)
		}
	}
	if out.SyncFailed {
		fmt.Fprintf(w, "note: %s is present: a write or sync failed; open cuts what follows the point it names\n", wal.SyncFailedFile)
	}
	if out.Salvaged != "" {
		fmt.Fprintf(w, "salvaged to %s: %d segment files; the original is unchanged\n", out.Salvaged, len(out.Files))
	}
}
