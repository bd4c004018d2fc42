package tpc

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

var updateParticipantGolden = flag.Bool("update-participant", false, "rewrite tpc/testdata/participant_*.txt with the actual output")

// TestParticipantScenarios runs every tpc/testdata/participant_*.txt script.
// A script is a sequence of blocks: a command line, "----", and the output
// that command must produce (every action and reply of its Ready, in order),
// ended by a blank line. Lines starting with # are comments.
//
// Commands:
//
//	config onephase=true|false indoubt=DUR querymin=DUR querymax=DUR retain=N   (fresh machine)
//	prepare REQ ID [1pc] [coord=URL] [payload=JSON]
//	commit REQ ID | abort REQ ID
//	done KIND ID [vote=V] [outcome=O] [err=unknown|decided|failed] [reason=TEXT...]
//	tick +DUR        advance the clock and tick
//	recovered ID...
//	status ID | indoubt | wake
func TestParticipantScenarios(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "participant_*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no participant scenarios found")
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runParticipantScenario(t, f) })
	}
}

type pscnBlock struct {
	comments []string
	cmd      string
	want     string
}

func pscnParse(t *testing.T, data []byte) []pscnBlock {
	var blocks []pscnBlock
	var cur pscnBlock
	sc := bufio.NewScanner(bytes.NewReader(data))
	line := 0
	for sc.Scan() {
		line++
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "#") || (l == "" && cur.cmd == ""):
			cur.comments = append(cur.comments, l)
		case cur.cmd == "":
			cur.cmd = l
			if !sc.Scan() || sc.Text() != "----" {
				t.Fatalf("line %d: command %q is not followed by ----", line, l)
			}
			line++
			var out []string
			for sc.Scan() {
				line++
				if sc.Text() == "" {
					break
				}
				out = append(out, sc.Text())
			}
			cur.want = strings.Join(out, "\n")
			blocks = append(blocks, cur)
			cur = pscnBlock{}
		}
	}
	if len(cur.comments) > 0 {
		blocks = append(blocks, cur)
	}
	return blocks
}

func runParticipantScenario(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks := pscnParse(t, data)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := &pscnRunner{start: start, now: start, m: NewParticipant(ParticipantConfig{})}
	var out strings.Builder
	for _, b := range blocks {
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		if b.cmd == "" {
			continue
		}
		got, err := r.run(b.cmd)
		if err != nil {
			t.Fatalf("%s: %q: %v", file, b.cmd, err)
		}
		if !*updateParticipantGolden && got != b.want {
			t.Errorf("%s: %s\n got:\n%s\nwant:\n%s", file, b.cmd, pscnIndent(got), pscnIndent(b.want))
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n\n", b.cmd, got)
	}
	if *updateParticipantGolden {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func pscnIndent(s string) string { return "    " + strings.ReplaceAll(s, "\n", "\n    ") }

type pscnRunner struct {
	start, now time.Time
	m          *Participant
}

func (r *pscnRunner) rel(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "+" + t.Sub(r.start).String()
}

func pscnKV(args []string) (map[string]string, string) {
	kv := map[string]string{}
	rest := ""
	for i, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok {
			kv[a] = "true"
			continue
		}
		if k == "reason" || k == "payload" {
			rest = strings.Join(append([]string{v}, args[i+1:]...), " ")
			kv[k] = rest
			break
		}
		kv[k] = v
	}
	return kv, rest
}

func (r *pscnRunner) run(cmd string) (string, error) {
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return "", fmt.Errorf("empty command")
	}
	need := func(n int) error {
		if len(f) < n {
			return fmt.Errorf("%s needs %d arguments", f[0], n-1)
		}
		return nil
	}
	var rd ParticipantReady
	switch f[0] {
	case "config":
		kv, _ := pscnKV(f[1:])
		var cfg ParticipantConfig
		var err error
		for k, v := range kv {
			switch k {
			case "onephase":
				cfg.OnePhase = v == "true"
			case "indoubt":
				cfg.InDoubtAfter, err = time.ParseDuration(v)
			case "querymin":
				cfg.QueryMin, err = time.ParseDuration(v)
			case "querymax":
				cfg.QueryMax, err = time.ParseDuration(v)
			case "retain":
				cfg.Retain, err = strconv.Atoi(v)
			default:
				return "", fmt.Errorf("unknown config key %q", k)
			}
			if err != nil {
				return "", err
			}
		}
		r.m = NewParticipant(cfg)
		return "ok", nil
	case "prepare":
		if err := need(3); err != nil {
			return "", err
		}
		req, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return "", err
		}
		kv, _ := pscnKV(f[3:])
		var payload json.RawMessage
		if p, ok := kv["payload"]; ok {
			payload = json.RawMessage(p)
		}
		rd = r.m.Prepare(req, concord.TxID(f[2]), payload, kv["1pc"] == "true", kv["coord"], r.now)
	case "commit", "abort":
		if err := need(3); err != nil {
			return "", err
		}
		req, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			return "", err
		}
		if f[0] == "commit" {
			rd = r.m.Commit(req, concord.TxID(f[2]), r.now)
		} else {
			rd = r.m.Abort(req, concord.TxID(f[2]), r.now)
		}
	case "done":
		if err := need(3); err != nil {
			return "", err
		}
		res := ParticipantResult{ID: concord.TxID(f[2])}
		found := false
		for k := ActPrepare; k <= ActQuery; k++ {
			if k.String() == f[1] {
				res.Kind, found = k, true
			}
		}
		if !found {
			return "", fmt.Errorf("unknown action %q", f[1])
		}
		kv, _ := pscnKV(f[3:])
		var err error
		if v, ok := kv["vote"]; ok {
			if res.Vote, err = concord.ParseVote(v); err != nil {
				return "", err
			}
		}
		if v, ok := kv["outcome"]; ok {
			if res.Outcome, err = concord.ParseOutcome(v); err != nil {
				return "", err
			}
		}
		res.Reason = kv["reason"]
		switch kv["err"] {
		case "":
		case "unknown":
			res.Err = PErrUnknownTx
		case "decided":
			res.Err = PErrAlreadyDecided
		case "failed":
			res.Err, res.ErrText = PErrFailed, "disk on fire"
		default:
			return "", fmt.Errorf("unknown err %q", kv["err"])
		}
		rd = r.m.Done(res, r.now)
	case "tick":
		if err := need(2); err != nil {
			return "", err
		}
		d, err := time.ParseDuration(strings.TrimPrefix(f[1], "+"))
		if err != nil {
			return "", err
		}
		r.now = r.now.Add(d)
		rd = r.m.Tick(r.now)
	case "recovered":
		ids := make([]concord.TxID, 0, len(f)-1)
		for _, s := range f[1:] {
			ids = append(ids, concord.TxID(s))
		}
		rd = r.m.Recovered(ids, r.now)
	case "status":
		if err := need(2); err != nil {
			return "", err
		}
		s, ok := r.m.Lookup(concord.TxID(f[1]))
		if !ok {
			return "not remembered", nil
		}
		return r.fmtStatus(s), nil
	case "indoubt":
		var lines []string
		for _, s := range r.m.InDoubt() {
			lines = append(lines, r.fmtStatus(s))
		}
		if len(lines) == 0 {
			return "none", nil
		}
		return strings.Join(lines, "\n"), nil
	case "wake":
		return "next wake " + r.rel(r.m.NextWake()), nil
	default:
		return "", fmt.Errorf("unknown command %q", f[0])
	}
	return r.fmtReady(rd), nil
}

func (r *pscnRunner) fmtStatus(s ParticipantTxStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s vote=%s", s.ID, s.State, s.Vote)
	if s.OnePhase {
		b.WriteString(" 1pc")
	}
	if s.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", s.Reason)
	}
	if s.Coordinator != "" {
		fmt.Fprintf(&b, " coord=%s", s.Coordinator)
	}
	if !s.PreparedAt.IsZero() {
		fmt.Fprintf(&b, " prepared=%s", r.rel(s.PreparedAt))
	}
	if s.Queries > 0 {
		fmt.Fprintf(&b, " queries=%d", s.Queries)
	}
	if s.LastError != "" {
		fmt.Fprintf(&b, " last-error=%q", s.LastError)
	}
	if s.Waiting > 0 {
		fmt.Fprintf(&b, " waiting=%d", s.Waiting)
	}
	if !s.NextQuery.IsZero() {
		fmt.Fprintf(&b, " next-query=%s", r.rel(s.NextQuery))
	}
	return b.String()
}

func (r *pscnRunner) fmtReady(rd ParticipantReady) string {
	if rd.Empty() {
		return "nothing"
	}
	var lines []string
	for _, a := range rd.Actions {
		l := fmt.Sprintf("call %s %s", a.Kind, a.ID)
		if a.Payload != nil {
			l += " payload=" + string(a.Payload)
		}
		if a.Kind == ActQuery {
			c := a.Coordinator
			if c == "" {
				c = "(default)"
			}
			l += " coord=" + c
		}
		lines = append(lines, l)
	}
	for _, p := range rd.Replies {
		var l string
		switch p.Kind {
		case ReplyVote:
			l = fmt.Sprintf("reply #%d %s vote %s", p.Req, p.ID, p.Vote)
		case ReplyAck:
			l = fmt.Sprintf("reply #%d %s ack", p.Req, p.ID)
		case ReplyFailure:
			l = fmt.Sprintf("reply #%d %s failure", p.Req, p.ID)
		}
		if p.Outcome != concord.OutcomePending {
			l += " outcome=" + p.Outcome.String()
		}
		if p.Reason != "" {
			l += fmt.Sprintf(" reason=%q", p.Reason)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
