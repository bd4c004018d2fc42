package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

func init() {
	register("book", "book a trip: a flight, a hotel and a car in one transaction", runBook)
}

// Exit statuses of concord book.
const (
	bookCommitted = 0
	bookAborted   = 1
	bookError     = 2
)

func runBook(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord book", flag.ContinueOnError)
	fs.SetOutput(stderr)
	coord := fs.String("coordinator", "http://127.0.0.1:7070", "coordinator base `URL`")
	auth := addClientAuthFlags(fs)
	flight := fs.String("flight", "", "flight `SKU` to reserve at the flights service, e.g. FL100")
	hotel := fs.String("hotel", "", "hotel `SKU` to reserve at the hotels service, e.g. H-PARIS")
	car := fs.String("car", "", "car `SKU` to reserve at the cars service, e.g. C-ECON")
	quantity := fs.Int64("quantity", 1, "units of each SKU (seats, rooms, cars)")
	id := fs.String("id", "", "transaction `ID` (idempotency key); the coordinator picks one when empty")
	timeout := fs.Duration("timeout", 5*time.Second, "how long the coordinator waits for votes before aborting")
	asJSON := fs.Bool("json", false, "print the coordinator's answer as JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord book [--coordinator URL] [--flight SKU] [--hotel SKU] [--car SKU] [--quantity N] [--id ID] [--json]")
		fmt.Fprintln(stderr, "Books any subset of a flight, a hotel and a car in one transaction.")
		fmt.Fprintln(stderr, "Exit status: 0 committed, 1 aborted, 2 error.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return bookError
	}
	failed := failer("concord book", asJSON, stdout, stderr)
	fail := func(format string, a ...any) int { return failed(bookError, format, a...) }
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}
	if *quantity < 1 || *quantity > travel.MaxQuantity {
		return fail("--quantity %d: want 1 to %d", *quantity, travel.MaxQuantity)
	}
	if *timeout <= 0 {
		return fail("--timeout %v: want a positive duration", *timeout)
	}
	if *id != "" {
		if err := concord.ValidateTxID(concord.TxID(*id)); err != nil {
			return fail("--id: %v", err)
		}
	}
	base, err := travelURL(*coord)
	if err != nil {
		return fail("--coordinator: %v", err)
	}
	req := wire.SubmitRequest{ID: concord.TxID(*id), TimeoutMS: timeout.Milliseconds()}
	for _, b := range []struct{ flag, sku, service string }{
		{"--flight", *flight, travel.Flights}, {"--hotel", *hotel, travel.Hotels}, {"--car", *car, travel.Cars},
	} {
		if b.sku == "" {
			continue
		}
		if err := travel.ValidateSKU(b.sku); err != nil {
			return fail("%s: %v", b.flag, err)
		}
		req.Branches = append(req.Branches, wire.Branch{
			Participant: b.service,
			Payload:     travel.Request{SKU: b.sku, Quantity: *quantity}.Payload(),
		})
	}
	if len(req.Branches) == 0 {
		return fail("nothing to book: give at least one of --flight, --hotel, --car")
	}

	copts, err := auth.options(client.Options{URL: base}, stderr)
	if err != nil {
		return fail("%v", err)
	}
	cl, err := client.New(copts)
	if err != nil {
		return fail("--coordinator: %v", err)
	}
	if req.ID == "" {
		req.ID = client.NewID() // chosen here, so a failed submit can be asked about or retried
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout+time.Minute)
	defer cancel()
	resp, err := cl.Submit(ctx, req)
	if err != nil {
		return fail("submit %s: %v (submitting again with --id %s is safe: it runs once)", req.ID, err, req.ID)
	}
	if *asJSON {
		b, err := json.Marshal(resp)
		if err != nil {
			return fail("encode answer: %v", err)
		}
		fmt.Fprintf(stdout, "%s\n", b)
	} else {
		printBooking(stdout, req, resp)
	}
	switch resp.Outcome {
	case concord.OutcomeCommitted:
		return bookCommitted
	case concord.OutcomeAborted:
		return bookAborted
	}
	fmt.Fprintf(stderr, "concord book: the coordinator answered outcome %q for %s; ask again with concord tx show %s\n", resp.Outcome, resp.ID, resp.ID)
	return bookError
}

// printBooking shows the outcome and each service's vote readably.
func printBooking(w io.Writer, req wire.SubmitRequest, resp wire.SubmitResponse) {
	fmt.Fprintf(w, "transaction %s: %s", resp.ID, resp.Outcome)
	if resp.Reason != "" {
		fmt.Fprintf(w, " (%s)", resp.Reason)
	}
	fmt.Fprintln(w)
	what := map[string]string{}
	for _, b := range req.Branches {
		if r, err := travel.DecodeRequest(b.Payload); err == nil {
			what[b.Participant] = fmt.Sprintf("%s x%d", r.SKU, r.Quantity)
		}
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  SERVICE\tBOOKING\tVOTE\tREASON")
	for _, b := range resp.Branches {
		vote, reason := b.Vote.String(), b.Reason
		switch {
		case b.Vote == concord.VoteNone:
			vote, reason = "-", "no answer before the decision"
		case reason == "" && b.Vote != concord.VoteYes && len(resp.Branches) == 1:
			// A lone participant decides in one phase; its reason is the transaction's.
			reason = strings.TrimPrefix(resp.Reason, b.Participant+": ")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", b.Participant, what[b.Participant], vote, reason)
	}
	tw.Flush()
}

// travelURL checks a service's base URL and drops a trailing slash.
func travelURL(s string) (string, error) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("%q is not an http:// or https:// URL with a host", s)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("%q: a base URL takes no query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}
