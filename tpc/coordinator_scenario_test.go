package tpc

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord"
)

var update = flag.Bool("update", false, "rewrite the golden files of the scenario tests")

// TestCoordinatorScenarios runs every tpc/testdata/coordinator_*.txt script against the
// coordinator and compares its output with the .golden file beside it.
// Every Ready is also checked by the invariant checker. Run with -update to
// rewrite the goldens, then review the diff.
func TestCoordinatorScenarios(t *testing.T) {
	scripts, err := filepath.Glob("testdata/coordinator_*.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(scripts) == 0 {
		t.Fatal("no scenarios in testdata")
	}
	for _, script := range scripts {
		name := strings.TrimSuffix(filepath.Base(script), ".txt")
		t.Run(name, func(t *testing.T) {
			src, err := os.ReadFile(script)
			if err != nil {
				t.Fatal(err)
			}
			got, err := runScenario(string(src))
			if err != nil {
				t.Fatalf("%s: %v\noutput so far:\n%s", script, err, got)
			}
			golden := strings.TrimSuffix(script, ".txt") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./tpc -run TestCoordinatorScenarios -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (rerun with -update and review the diff):\n%s", script, golden, lineDiff(string(want), got))
			}
		})
	}
}

// scenarioEpoch is time zero of every scenario; times print as offsets.
var scenarioEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// scenario is the state of one running script: a coordinator's
// transactions, its log and a clock.
type scenario struct {
	cfg    Config
	now    time.Time
	txs    map[concord.TxID]*CoordinatorTx
	order  []concord.TxID
	log    []Record
	synced int // records log[:synced] are durable
	check  *checker
	out    strings.Builder
}

// runScenario runs a script and returns its output; an error is a broken
// invariant or a bad command.
func runScenario(src string) (string, error) {
	s := &scenario{
		cfg:   Config{RetryMin: time.Second, RetryMax: 8 * time.Second},
		now:   scenarioEpoch,
		txs:   map[concord.TxID]*CoordinatorTx{},
		check: newChecker(),
	}
	sc := bufio.NewScanner(strings.NewReader(src))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			s.out.WriteString(sc.Text() + "\n")
			continue
		}
		fmt.Fprintf(&s.out, "> %s\n", line)
		if err := s.run(strings.Fields(line)); err != nil {
			return s.out.String(), fmt.Errorf("line %d: %s: %w", n, line, err)
		}
	}
	return s.out.String(), sc.Err()
}

func (s *scenario) run(f []string) error {
	cmd, args := f[0], f[1:]
	switch cmd {
	case "begin":
		return s.begin(args)
	case "config":
		return s.config(args)
	case "tick":
		if len(args) > 1 {
			return fmt.Errorf("usage: tick [+duration]")
		}
		if len(args) == 1 {
			d, err := time.ParseDuration(strings.TrimPrefix(args[0], "+"))
			if err != nil {
				return err
			}
			s.now = s.now.Add(d)
		}
		fmt.Fprintf(&s.out, "  now %s\n", s.rel(s.now))
		any := false
		for _, id := range s.order {
			rd := s.txs[id].Tick(s.now)
			if !isEmpty(rd) {
				any = true
				if err := s.apply(id, rd); err != nil {
					return err
				}
			}
		}
		if !any {
			s.out.WriteString("  (nothing)\n")
		}
		return nil
	case "crash":
		return s.crash(args)
	case "log":
		for _, r := range s.log {
			fmt.Fprintf(&s.out, "  %s\n", fmtRecord(r))
		}
		return nil
	}
	if len(args) == 0 {
		return fmt.Errorf("%s: missing transaction id", cmd)
	}
	id := concord.TxID(args[0])
	tx := s.txs[id]
	if tx == nil {
		return fmt.Errorf("unknown transaction %s", id)
	}
	args = args[1:]
	switch cmd {
	case "vote":
		if len(args) < 2 {
			return fmt.Errorf("usage: vote TX PARTICIPANT VOTE [outcome=O] [reason=...]")
		}
		ev := VoteEvent{Participant: args[0]}
		v, err := concord.ParseVote(args[1])
		if err != nil {
			return err
		}
		ev.Vote = v
		for i := 2; i < len(args); i++ {
			switch k, val, _ := strings.Cut(args[i], "="); k {
			case "outcome":
				if ev.Outcome, err = concord.ParseOutcome(val); err != nil {
					return err
				}
			case "reason":
				ev.Reason = strings.Join(append([]string{val}, args[i+1:]...), " ")
				i = len(args)
			default:
				return fmt.Errorf("unknown vote option %q", args[i])
			}
		}
		return s.apply(id, tx.Vote(ev, s.now))
	case "ack":
		if len(args) != 1 {
			return fmt.Errorf("usage: ack TX PARTICIPANT")
		}
		return s.apply(id, tx.Ack(args[0], s.now))
	case "fail":
		if len(args) < 1 {
			return fmt.Errorf("usage: fail TX PARTICIPANT [reason words]")
		}
		return s.apply(id, tx.DeliveryFailed(args[0], strings.Join(args[1:], " "), s.now))
	case "resolved":
		if len(args) != 2 {
			return fmt.Errorf("usage: resolved TX PARTICIPANT OUTCOME")
		}
		o, err := concord.ParseOutcome(args[1])
		if err != nil {
			return err
		}
		return s.apply(id, tx.Resolved(args[0], o, s.now))
	case "retry-now":
		return s.apply(id, tx.RetryNow(s.now))
	case "abort":
		rd, err := tx.Abort(strings.Join(args, " "), s.now)
		if err != nil {
			fmt.Fprintf(&s.out, "  error: %v\n", err)
			return s.apply(id, rd)
		}
		return s.apply(id, rd)
	case "status":
		s.status(tx.Status())
		return nil
	case "wake":
		fmt.Fprintf(&s.out, "  next wake %s\n", s.rel(tx.NextWake()))
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// config sets the retry bounds: config retry-min=1s retry-max=8s.
func (s *scenario) config(args []string) error {
	for _, a := range args {
		k, v, _ := strings.Cut(a, "=")
		d, err := time.ParseDuration(v)
		if err != nil {
			return err
		}
		switch k {
		case "retry-min":
			s.cfg.RetryMin = d
		case "retry-max":
			s.cfg.RetryMax = d
		default:
			return fmt.Errorf("unknown config %q", k)
		}
	}
	fmt.Fprintf(&s.out, "  retry %v..%v\n", s.cfg.RetryMin, s.cfg.RetryMax)
	return nil
}

// begin: begin TX PARTICIPANT... [timeout=D]. Each branch's payload names
// its participant.
func (s *scenario) begin(args []string) error {
	if len(args) < 1 {
		return fmt.Errorf("usage: begin TX PARTICIPANT... [timeout=D]")
	}
	id := concord.TxID(args[0])
	var deadline time.Time
	var branches []Branch
	for _, a := range args[1:] {
		if v, ok := strings.CutPrefix(a, "timeout="); ok {
			d, err := time.ParseDuration(v)
			if err != nil {
				return err
			}
			deadline = s.now.Add(d)
			continue
		}
		p, _ := json.Marshal(map[string]string{"item": a + "-1"})
		branches = append(branches, Branch{Participant: a, Payload: p})
	}
	if _, dup := s.txs[id]; dup {
		return fmt.Errorf("transaction %s already begun in this script", id)
	}
	tx, rd := Begin(s.cfg, id, branches, s.now, deadline)
	s.txs[id] = tx
	s.order = append(s.order, id)
	return s.apply(id, rd)
}

// crash keeps the log (all of it, or with lose-unsynced only what was
// synced), drops every transaction and recovers.
func (s *scenario) crash(args []string) error {
	switch {
	case len(args) == 0:
	case len(args) == 1 && args[0] == "lose-unsynced":
		s.log = s.log[:s.synced]
	default:
		return fmt.Errorf("usage: crash [lose-unsynced]")
	}
	s.synced = len(s.log)
	fmt.Fprintf(&s.out, "  log kept: %d records\n", len(s.log))
	s.check.crash(s.log)
	live, finished := Recover(s.cfg, append([]Record(nil), s.log...), s.now)
	s.txs = map[concord.TxID]*CoordinatorTx{}
	s.order = nil
	for _, st := range finished {
		fmt.Fprintf(&s.out, "  finished %s %s", st.TxID, st.Outcome)
		if st.Reason != "" {
			fmt.Fprintf(&s.out, " (%s)", st.Reason)
		}
		s.out.WriteString("\n")
	}
	for _, l := range live {
		id := l.Tx.ID()
		s.txs[id] = l.Tx
		s.order = append(s.order, id)
		fmt.Fprintf(&s.out, "  recovered %s\n", id)
		if err := s.apply(id, l.Ready); err != nil {
			return err
		}
	}
	// Finished transactions stay addressable for status.
	for _, st := range finished {
		if _, ok := s.txs[st.TxID]; !ok {
			s.txs[st.TxID] = &CoordinatorTx{id: st.TxID, phase: phaseDone, outcome: st.Outcome, reason: st.Reason}
			s.order = append(s.order, st.TxID)
		}
	}
	return nil
}

// apply checks a Ready, performs it against the log and prints it.
func (s *scenario) apply(id concord.TxID, rd Ready) error {
	if err := s.check.step(id, rd); err != nil {
		return err
	}
	s.log = append(s.log, rd.Records...)
	if rd.MustSync {
		s.synced = len(s.log)
	}
	s.out.WriteString(fmtReady(id, rd))
	return nil
}

func (s *scenario) status(st Status) {
	fmt.Fprintf(&s.out, "  status %s outcome=%s done=%t", st.TxID, st.Outcome, st.Done)
	if st.OnePhase {
		s.out.WriteString(" one-phase")
	}
	if !st.Deadline.IsZero() {
		fmt.Fprintf(&s.out, " deadline=%s", s.rel(st.Deadline))
	}
	if st.Reason != "" {
		fmt.Fprintf(&s.out, " reason=%q", st.Reason)
	}
	s.out.WriteString("\n")
	for _, b := range st.Branches {
		fmt.Fprintf(&s.out, "    %s vote=%s acked=%t attempts=%d", b.Participant, b.Vote, b.Acknowledged, b.Attempts)
		if b.Reason != "" {
			fmt.Fprintf(&s.out, " reason=%q", b.Reason)
		}
		if b.LastError != "" {
			fmt.Fprintf(&s.out, " last-error=%q", b.LastError)
		}
		if !b.NextRetry.IsZero() {
			fmt.Fprintf(&s.out, " next-retry=%s", s.rel(b.NextRetry))
		}
		s.out.WriteString("\n")
	}
}

// rel prints a time as an offset from the scenario's epoch.
func (s *scenario) rel(t time.Time) string {
	if t.IsZero() {
		return "none"
	}
	return "+" + t.Sub(scenarioEpoch).String()
}

func isEmpty(rd Ready) bool {
	return len(rd.Records) == 0 && len(rd.Messages) == 0 && rd.Outcome == concord.OutcomePending && !rd.Done && !rd.MustSync
}

// fmtReady prints a Ready in the order the driver performs it: records,
// sync, messages, outcome, done.
func fmtReady(id concord.TxID, rd Ready) string {
	if isEmpty(rd) {
		return "  (nothing)\n"
	}
	var b strings.Builder
	for _, r := range rd.Records {
		fmt.Fprintf(&b, "  append %s\n", fmtRecord(r))
	}
	if rd.MustSync {
		b.WriteString("  sync\n")
	}
	for _, m := range rd.Messages {
		fmt.Fprintf(&b, "  send %s %s -> %s", m.Kind, m.TxID, m.To)
		if m.OnePhase {
			b.WriteString(" one-phase")
		}
		if len(m.Payload) > 0 {
			fmt.Fprintf(&b, " %s", m.Payload)
		}
		b.WriteString("\n")
	}
	if rd.Outcome != concord.OutcomePending {
		fmt.Fprintf(&b, "  outcome %s %s", id, rd.Outcome)
		if rd.Reason != "" {
			fmt.Fprintf(&b, " (%s)", rd.Reason)
		}
		b.WriteString("\n")
	}
	if rd.Done {
		fmt.Fprintf(&b, "  done %s\n", id)
	}
	return b.String()
}

func fmtRecord(r Record) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Type, r.TxID)
	if r.OnePhase {
		b.WriteString(" one-phase")
	}
	for i, p := range r.Participants {
		if i < len(r.Votes) {
			fmt.Fprintf(&b, " %s=%s", p, r.Votes[i])
		} else {
			fmt.Fprintf(&b, " %s", p)
		}
	}
	if r.Outcome != concord.OutcomePending {
		fmt.Fprintf(&b, " outcome=%s", r.Outcome)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", r.Reason)
	}
	return b.String()
}

// lineDiff shows the first differing lines of want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s", i+1, wl, gl)
		}
	}
	return "(equal)"
}
