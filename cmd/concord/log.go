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
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal"
)

func init() {
	register("log", "inspect a write-ahead log directory (log dump DIR)", runLog)
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
	fmt.Fprintln(w, "usage: concord log dump [--json] [--from N] [--max-record-size BYTES] DIR")
	fmt.Fprintln(w, "Prints the records of the log in DIR without locking or repairing it,")
	fmt.Fprintln(w, "and where and why reading would stop on damage.")
	fmt.Fprintln(w, "Exit status: 0 whole log read, 1 damage found or read error, 2 usage error.")
}

func runLog(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		logUsageText(stderr)
		return logUsage
	}
	switch args[0] {
	case "dump":
		return runLogDump(args[1:], stdout, stderr)
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
	maxRec := fset.Int("max-record-size", wal.DefaultMaxRecordSize, "largest payload in `BYTES` the log was written with")
	fset.Usage = func() {
		logUsageText(stderr)
		fset.PrintDefaults()
	}
	// Flags may come before or after DIR.
	var dirs []string
	for {
		if err := fset.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return logOK
			}
			return logUsage
		}
		if fset.NArg() == 0 {
			break
		}
		dirs = append(dirs, fset.Arg(0))
		args = fset.Args()[1:]
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
