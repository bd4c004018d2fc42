package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
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
	fmt.Fprintln(w, "       concord tx retry ID [--json] [--coordinator URL]   resend the decision now to whoever has not acknowledged")
	fmt.Fprintln(w, "       concord tx abort ID [--reason TEXT] [--json] [--coordinator URL]   abort a transaction not yet decided")
}

// runTx dispatches concord tx's subcommands. Exit status 0 on success, 1
// when the coordinator cannot answer or has no such transaction, 2 for
// usage errors.
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

func txClient(coord string, auth *clientAuthFlags, stderr io.Writer, cmd string) (*client.Client, bool) {
	opts, err := auth.options(client.Options{URL: coord, Timeout: 10 * time.Second})
	if err != nil {
		fmt.Fprintf(stderr, "concord tx %s: %v\n", cmd, err)
		return nil, false
	}
	cl, err := client.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "concord tx %s: --coordinator: %v\n", cmd, err)
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
	if len(pos) > 0 {
		fmt.Fprintf(stderr, "concord tx list: unexpected argument %q\n", pos[0])
		return 2
	}
	switch *state {
	case "pending", "committed", "aborted", "all":
	default:
		fmt.Fprintf(stderr, "concord tx list: --state %q: use pending, committed, aborted or all\n", *state)
		return 2
	}
	if *limit < 1 {
		fmt.Fprintf(stderr, "concord tx list: --limit %d: want at least 1\n", *limit)
		return 2
	}
	cl, ok := txClient(*coord, auth, stderr, "list")
	if !ok {
		return 2
	}
	var list wire.TxList
	if *participant == "" {
		list, err = cl.List(context.Background(), *state, *limit)
	} else {
		q := url.Values{"state": {*state}, "limit": {strconv.Itoa(*limit)}, "participant": {*participant}}
		err = opsDo(*coord, http.MethodGet, wire.PathTransactions+"?"+q.Encode(), nil, &list)
	}
	if err != nil {
		fmt.Fprintf(stderr, "concord tx list: %v\n", err)
		return 1
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
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "concord tx show: want exactly one transaction ID")
		txUsage(stderr)
		return 2
	}
	id := concord.TxID(pos[0])
	if err := concord.ValidateTxID(id); err != nil {
		fmt.Fprintf(stderr, "concord tx show: %v\n", err)
		return 2
	}
	cl, ok := txClient(*coord, auth, stderr, "show")
	if !ok {
		return 2
	}
	st, err := cl.Get(context.Background(), id)
	if errors.Is(err, client.ErrForgotten) {
		fmt.Fprintf(stderr, "concord tx show: %s is forgotten: the coordinator holds no record of it "+
			"(never submitted, or finished longer ago than its idempotency window); its outcome is unknown, not aborted\n", id)
		return 1
	}
	if err != nil {
		fmt.Fprintf(stderr, "concord tx show: %v\n", err)
		return 1
	}
	var tl wire.TxTimeline
	tlErr := opsDo(*coord, http.MethodGet, wire.TimelinePath(id), nil, &tl)
	if *asJSON && *events {
		if tlErr != nil {
			fmt.Fprintf(stderr, "concord tx show: timeline: %v\n", tlErr)
			return 1
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
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "concord tx %s: want exactly one transaction ID\n", op)
		txUsage(stderr)
		return 2
	}
	id := concord.TxID(pos[0])
	if err := concord.ValidateTxID(id); err != nil {
		fmt.Fprintf(stderr, "concord tx %s: %v\n", op, err)
		return 2
	}
	cl, ok := txClient(*coord, auth, stderr, op)
	if !ok {
		return 2
	}
	var st wire.TxStatus
	switch {
	case op == "retry":
		st, err = cl.RetryNow(context.Background(), id)
	case *reason != "":
		err = opsDo(*coord, http.MethodPost, wire.AbortPath(id), wire.ActionRequest{Reason: *reason}, &st)
	default:
		st, err = cl.Abort(context.Background(), id)
	}
	if err != nil {
		fmt.Fprintf(stderr, "concord tx %s: %v\n", op, err)
		if *asJSON {
			json.NewEncoder(stdout).Encode(wire.ErrorResponse{Error: err.Error()})
		}
		return 1
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
