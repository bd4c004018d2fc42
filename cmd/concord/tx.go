package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/wire"
)

func init() {
	register("tx", "list and inspect the coordinator's transactions", runTx)
}

func txUsage(w io.Writer) {
	fmt.Fprintln(w, "usage: concord tx list [--state pending|committed|aborted|all] [--participant NAME] [--limit N] [--json] [--coordinator URL]")
	fmt.Fprintln(w, "       concord tx show ID [--json] [--events] [--coordinator URL]   state, votes, acknowledgements and timeline")
	fmt.Fprintln(w, "       concord tx retry ID [--wait 10s] [--json] [--coordinator URL]   resend the decision now to whoever has not acknowledged, and say what each answered")
	fmt.Fprintln(w, "       concord tx abort ID [--reason TEXT] [--json] [--coordinator URL]   abort a transaction not yet decided")
}

// runTx dispatches concord tx's subcommands. Exit status 0 on success, 1
// when the coordinator cannot answer or has no such transaction, or a
// resend failed again, 2 for usage errors. With --json a failure prints
// {"error": ...} on stdout.
func runTx(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		txUsage(stderr)
		return 2
	}
	switch args[0] {
	case "list":
		return runTxList(args[1:], stdout, stderr)
	case "show":
		return runTxShow(args[1:], stdout, stderr)
	case "retry", "abort":
		return runTxOperate(args[0], args[1:], stdout, stderr)
	case "-h", "--help", "help":
		txUsage(stderr)
		return 0
	}
	fmt.Fprintf(stderr, "concord tx: unknown subcommand %q\n", args[0])
	txUsage(stderr)
	return 2
}

// parseInterleaved parses flags that may come before or after positional
// arguments, returning the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func txClient(coord string, auth *clientAuthFlags, stderr io.Writer, fail func(int, string, ...any) int) (*client.Client, bool) {
	opts, err := auth.options(client.Options{URL: coord, Timeout: 10 * time.Second}, stderr)
	if err != nil {
		fail(2, "%v", err)
		return nil, false
	}
	cl, err := client.New(opts)
	if err != nil {
		fail(2, "--coordinator: %v", err)
		return nil, false
	}
	return cl, true
}

func runTxList(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord tx list", flag.ContinueOnError)
	fs.SetOutput(stderr)
	coord := fs.String("coordinator", client.DefaultURL, "coordinator base `URL`")
	auth := addClientAuthFlags(fs)
	state := fs.String("state", "pending", "which transactions: pending (preparing or awaiting acknowledgements), committed, aborted or all")
	limit := fs.Int("limit", 100, "most transactions to list")
	participant := fs.String("participant", "", "only transactions with a branch at this participant `name`")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := failer("concord tx list", asJSON, stdout, stderr)
	if len(pos) > 0 {
		return fail(2, "unexpected argument %q", pos[0])
	}
	switch *state {
	case "pending", "committed", "aborted", "all":
	default:
		return fail(2, "--state %q: use pending, committed, aborted or all", *state)
	}
	if *limit < 1 {
		return fail(2, "--limit %d: want at least 1", *limit)
	}
	cl, ok := txClient(*coord, auth, stderr, fail)
	if !ok {
		return 2
	}
	list, err := cl.ListParticipant(context.Background(), client.State(*state), *participant, *limit)
	if err != nil {
		return fail(1, "%v", err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(list)
		return 0
	}
	if len(list.Transactions) == 0 {
		fmt.Fprintf(stdout, "no %s transactions\n", *state)
		return 0
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tDONE\tPARTICIPANTS")
	for _, t := range list.Transactions {
		var ps []string
		for _, b := range t.Branches {
			ps = append(ps, fmt.Sprintf("%s(%s%s)", b.Participant, b.Vote, ackNote(t, b)))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.ID, t.State, yesNo(t.Done), strings.Join(ps, " "))
	}
	tw.Flush()
	return 0
}

// ackNote says where a branch stands on the decision.
func ackNote(t wire.TxStatus, b wire.BranchStatus) string {
	switch {
	case b.Acknowledged:
		return ", acknowledged"
	case t.State == "committed" && b.Vote == concord.VoteYes:
		return fmt.Sprintf(", awaiting ack after %d attempts", b.Attempts)
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func runTxShow(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord tx show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	coord := fs.String("coordinator", client.DefaultURL, "coordinator base `URL`")
	auth := addClientAuthFlags(fs)
	asJSON := fs.Bool("json", false, "print JSON")
	events := fs.Bool("events", false, "with --json, print the timeline (state and events) instead of the state alone")
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := failer("concord tx show", asJSON, stdout, stderr)
	if len(pos) != 1 {
		txUsage(stderr)
		return fail(2, "want exactly one transaction ID")
	}
	id := concord.TxID(pos[0])
	if err := concord.ValidateTxID(id); err != nil {
		return fail(2, "%v", err)
	}
	cl, ok := txClient(*coord, auth, stderr, fail)
	if !ok {
		return 2
	}
	st, err := cl.Get(context.Background(), id)
	if errors.Is(err, client.ErrForgotten) {
		return fail(1, "%s is forgotten: the coordinator holds no record of it "+
			"(never submitted, or finished longer ago than its idempotency window); its outcome is unknown, not aborted", id)
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	tl, tlErr := cl.Timeline(context.Background(), id)
	if *asJSON && *events {
		if tlErr != nil {
			return fail(1, "timeline: %v", tlErr)
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(tl)
		return 0
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return 0
	}
	fmt.Fprintf(stdout, "transaction %s\n", st.ID)
	fmt.Fprintf(stdout, "state:  %s\n", st.State)
	if st.Reason != "" {
		fmt.Fprintf(stdout, "reason: %s\n", st.Reason)
	}
	done := "yes: the coordinator needs nothing more"
	if !st.Done {
		done = "no: waiting for votes or acknowledgements"
	}
	fmt.Fprintf(stdout, "done:   %s\n\n", done)
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTICIPANT\tVOTE\tACKNOWLEDGED\tATTEMPTS\tLAST ERROR\tNEXT RETRY\tREASON")
	for _, b := range st.Branches {
		next := "-"
		if !b.NextRetry.IsZero() {
			next = b.NextRetry.UTC().Format(time.RFC3339Nano)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", b.Participant, b.Vote, yesNo(b.Acknowledged), b.Attempts,
			dash(b.LastError), next, dash(b.Reason))
	}
	tw.Flush()
	if tlErr == nil {
		printTimeline(stdout, tl)
	}
	return 0
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// runTxOperate runs concord tx retry or concord tx abort.
func runTxOperate(op string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord tx "+op, flag.ContinueOnError)
	fs.SetOutput(stderr)
	coord := fs.String("coordinator", client.DefaultURL, "coordinator base `URL`")
	auth := addClientAuthFlags(fs)
	asJSON := fs.Bool("json", false, "print the transaction's status after the action as JSON")
	reason := new(string)
	if op == "abort" {
		reason = fs.String("reason", "", "why it is aborted (`text`, logged and kept in the timeline)")
	}
	wait := new(time.Duration)
	if op == "retry" {
		wait = fs.Duration("wait", 10*time.Second, "how long to wait for the participants' answers to the resend (0: do not wait)")
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := failer("concord tx "+op, asJSON, stdout, stderr)
	if len(pos) != 1 {
		txUsage(stderr)
		return fail(2, "want exactly one transaction ID")
	}
	id := concord.TxID(pos[0])
	if err := concord.ValidateTxID(id); err != nil {
		return fail(2, "%v", err)
	}
	cl, ok := txClient(*coord, auth, stderr, fail)
	if !ok {
		return 2
	}
	var st wire.TxStatus
	switch {
	case op == "retry":
		st, err = cl.RetryNow(context.Background(), id)
	case *reason != "":
		st, err = cl.AbortBecause(context.Background(), id, *reason)
	default:
		st, err = cl.Abort(context.Background(), id)
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	if op == "retry" && *wait > 0 {
		res, err := awaitResend(context.Background(), cl, st, *wait)
		if err != nil {
			return fail(1, "resent; then: %v", err)
		}
		st = res.status
		if msg := res.failure(*wait); msg != "" {
			if !*asJSON {
				res.print(stdout)
			}
			return fail(1, "%s %s", st.ID, msg)
		}
		if !*asJSON {
			res.print(stdout)
			return 0
		}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(st)
		return 0
	}
	if op == "retry" {
		fmt.Fprintf(stdout, "transaction %s: %s; decision resent to every participant that had not acknowledged\n", st.ID, st.State)
	} else {
		fmt.Fprintf(stdout, "transaction %s: %s\n", st.ID, st.State)
	}
	return 0
}

// resendResult is what became of an operator's resend of a decision, per
// participant it went to.
type resendResult struct {
	status  wire.TxStatus
	acked   []string
	failed  []wire.BranchStatus // the resend failed again: LastError says why
	waiting []string            // no answer yet
}

// awaitResend follows a transaction after RetryNow answered st, until
// every participant the decision was resent to has acknowledged it or
// failed again, or wait has passed. A resend resets the branch's next
// retry; a failed delivery sets it again (and a later automatic retry adds
// an attempt), so the status alone tells the outcomes apart.
func awaitResend(ctx context.Context, cl *client.Client, st wire.TxStatus, wait time.Duration) (resendResult, error) {
	base := map[string]int{} // attempts right after the resend
	for _, b := range st.Branches {
		if !b.Acknowledged && b.Vote != concord.VoteNo {
			base[b.Participant] = b.Attempts
		}
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		res := resendResult{status: st}
		for _, b := range st.Branches {
			n, resent := base[b.Participant]
			switch {
			case !resent:
			case st.Done || b.Acknowledged:
				res.acked = append(res.acked, b.Participant)
			case !b.NextRetry.IsZero() || b.Attempts > n:
				res.failed = append(res.failed, b)
			default:
				res.waiting = append(res.waiting, b.Participant)
			}
		}
		if len(res.waiting) == 0 {
			return res, nil
		}
		select {
		case <-ctx.Done():
			return res, nil
		case <-tick.C:
		}
		next, err := cl.Get(ctx, st.ID)
		if err != nil {
			if ctx.Err() != nil {
				return res, nil
			}
			return res, err
		}
		st = next
	}
}

// failure says what went wrong with the resend, or "" if every participant
// acknowledged.
func (r resendResult) failure(wait time.Duration) string {
	var parts []string
	for _, b := range r.failed {
		parts = append(parts, fmt.Sprintf("%s: %s", b.Participant, dash(b.LastError)))
	}
	msg := ""
	if len(parts) > 0 {
		msg = "resend failed again: " + strings.Join(parts, "; ")
	}
	if len(r.waiting) > 0 {
		if msg != "" {
			msg += "; "
		}
		msg += fmt.Sprintf("no answer within %v from %s", wait, strings.Join(r.waiting, ", "))
	}
	if msg != "" {
		msg += " (the coordinator keeps retrying)"
	}
	return msg
}

// print shows each participant's answer to the resend.
func (r resendResult) print(w io.Writer) {
	if len(r.acked)+len(r.failed)+len(r.waiting) == 0 {
		fmt.Fprintf(w, "transaction %s: %s; nothing to resend: every participant had acknowledged\n", r.status.ID, r.status.State)
		return
	}
	fmt.Fprintf(w, "transaction %s: %s; decision resent\n", r.status.ID, r.status.State)
	for _, p := range r.acked {
		fmt.Fprintf(w, "  %s: acknowledged\n", p)
	}
	for _, b := range r.failed {
		next := ""
		if !b.NextRetry.IsZero() {
			next = "; next retry " + b.NextRetry.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(w, "  %s: FAILED AGAIN: %s%s\n", b.Participant, dash(b.LastError), next)
	}
	for _, p := range r.waiting {
		fmt.Fprintf(w, "  %s: no answer yet\n", p)
	}
}
