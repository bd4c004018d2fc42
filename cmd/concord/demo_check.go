package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/tpc"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal"
)

// demoCheck is one verified property of the run.
type demoCheck struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// demoRecord is one log record of the in-doubt trip.
type demoRecord struct {
	Log    string `json:"log"` // coordinator or a service
	Seq    uint64 `json:"seq"`
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

// demoSummary is the JSON form of the summary.
type demoSummary struct {
	OK           bool                     `json:"ok"`
	Seconds      float64                  `json:"seconds"`
	Trips        int                      `json:"trips"`
	Committed    int                      `json:"committed"`
	Aborted      int                      `json:"aborted"`
	PendingFirst int                      `json:"answered_pending_first"`
	AbortReasons map[string]int           `json:"abort_reasons"`
	Inventories  map[string][]travel.Item `json:"inventories"`
	InDoubt      struct {
		ID             concord.TxID `json:"id"`
		HotelAttempts  int          `json:"hotel_attempts_while_down"`
		LastError      string       `json:"last_error"`
		Recovered      int          `json:"recovered_in_doubt"`
		UnsyncedLost   int64        `json:"unsynced_bytes_lost"`
		CommittedAtAll bool         `json:"committed_at_every_service"`
	} `json:"in_doubt"`
	Records []demoRecord `json:"records"`
	Checks  []demoCheck  `json:"checks"`
}

func (r *demoRun) checkf(name string, ok bool, format string, a ...any) {
	r.checks = append(r.checks, demoCheck{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
}

// check verifies atomicity and conservation against the live services.
func (r *demoRun) check() {
	ctx := context.Background()
	stores := map[string]*travel.FileStore{}
	for _, name := range travel.ServiceNames() {
		_, st := r.cl.services[name].current()
		stores[name] = st
	}

	// 1. Every answer a client got agrees with the coordinator's record;
	// pending answers have settled.
	var mismatch, failed []string
	for i := range r.bookings {
		b := &r.bookings[i]
		if b.err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", b.req.ID, b.err))
			continue
		}
		tx, err := r.client.Get(ctx, b.resp.ID)
		if err != nil {
			mismatch = append(mismatch, fmt.Sprintf("%s: %v", b.resp.ID, err))
			continue
		}
		rec, err := concord.ParseOutcome(tx.State)
		switch {
		case err != nil || rec == concord.OutcomePending:
			mismatch = append(mismatch, fmt.Sprintf("%s still %s", b.resp.ID, tx.State))
		case b.resp.Outcome == concord.OutcomePending:
			b.final = rec
		case b.resp.Outcome != rec:
			mismatch = append(mismatch, fmt.Sprintf("%s: client heard %s, coordinator logged %s", b.resp.ID, b.resp.Outcome, tx.State))
		}
	}
	r.checkf("every trip was submitted and answered", len(failed) == 0, "%s", firstFew(failed))
	r.checkf("every answer matches the coordinator's log (pending answers settled)", len(mismatch) == 0, "%s", firstFew(mismatch))

	// 2. Agreement: the same outcome at every service a trip touched, and
	// the confirmed quantities add up.
	var disagree []string
	booked := map[string]map[string]int64{}
	for _, name := range travel.ServiceNames() {
		booked[name] = map[string]int64{}
	}
	for _, b := range r.bookings {
		if b.err != nil || (b.final != concord.OutcomeCommitted && b.final != concord.OutcomeAborted) {
			continue
		}
		for _, br := range b.req.Branches {
			res, err := stores[br.Participant].Reservation(ctx, b.resp.ID)
			if b.final == concord.OutcomeCommitted {
				if err != nil || res.State != travel.StateCommitted {
					disagree = append(disagree, fmt.Sprintf("%s committed but %s has %s %v", b.resp.ID, br.Participant, res.State, err))
					continue
				}
				booked[br.Participant][res.SKU] += res.Quantity
			} else if err == nil && res.State != travel.StateAborted {
				disagree = append(disagree, fmt.Sprintf("%s aborted but %s has it %s", b.resp.ID, br.Participant, res.State))
			}
		}
	}
	r.checkf("atomicity: every trip has one outcome at every service it touched", len(disagree) == 0, "%s", firstFew(disagree))

	// 3. Conservation, nothing held, and confirmed = committed quantities.
	r.inventories = map[string][]travel.Item{}
	var broken, sums []string
	for _, name := range travel.ServiceNames() {
		items, _ := stores[name].Items(ctx)
		r.inventories[name] = items
		if err := stores[name].Check(); err != nil {
			broken = append(broken, name+": "+err.Error())
		}
		before := map[string]int64{}
		for _, it := range r.before[name] {
			before[it.SKU] = it.Confirmed
		}
		for _, it := range items {
			if it.Held != 0 {
				broken = append(broken, fmt.Sprintf("%s %s: %d still held", name, it.SKU, it.Held))
			}
			if got := it.Confirmed - before[it.SKU]; got != booked[name][it.SKU] {
				sums = append(sums, fmt.Sprintf("%s %s: confirmed %d this run, committed trips booked %d", name, it.SKU, got, booked[name][it.SKU]))
			}
		}
	}
	r.checkf("conservation: available + held + confirmed = capacity, nothing left held", len(broken) == 0, "%s", firstFew(broken))
	r.checkf("confirmed units equal the sum of committed bookings, per SKU", len(sums) == 0, "%s", firstFew(sums))

	// 4. The in-doubt trip.
	var at []string
	r.inDoubtOK = true
	for _, name := range travel.ServiceNames() {
		res, err := stores[name].Reservation(ctx, r.inDoubt)
		if err != nil || res.State != travel.StateCommitted {
			r.inDoubtOK = false
			at = append(at, fmt.Sprintf("%s: %s %v", name, res.State, err))
		}
	}
	r.checkf("the in-doubt trip waited while hotels was down, then committed everywhere",
		r.inDoubtOK && r.inDoubtTries >= 3 && r.recovered >= 1,
		"%s", strings.Join(append([]string{fmt.Sprintf("%d delivery attempts while down, %d reservation(s) recovered in doubt", r.inDoubtTries, r.recovered)}, at...), "; "))

	var c, a int
	for _, b := range r.bookings {
		switch b.final {
		case concord.OutcomeCommitted:
			c++
		case concord.OutcomeAborted:
			a++
		}
	}
	r.checkf("the run exercised both outcomes (commits; aborts from sell-outs and the hotel outage)", c > 0 && a > 0, "%d committed, %d aborted", c, a)
}

// firstFew shows up to three problems and how many more there are.
func firstFew(list []string) string {
	if len(list) <= 3 {
		return strings.Join(list, "; ")
	}
	return strings.Join(list[:3], "; ") + fmt.Sprintf("; and %d more", len(list)-3)
}

// readRecords collects the in-doubt trip's records from the coordinator's
// log and the hotel's, after both are closed.
func (r *demoRun) readRecords() {
	_, r.recordsErr = wal.Inspect(wal.Options{Dir: r.cl.coordDir}, 0, func(rec wal.Record) error {
		var tr tpc.Record
		if rec.Type < uint8(tpc.RecBegin) || rec.Type > uint8(tpc.RecEnd) || tr.UnmarshalBinary(rec.Payload) != nil || tr.TxID != r.inDoubt {
			return nil
		}
		d := demoRecord{Log: "coordinator", Seq: rec.Seq, Type: tr.Type.String()}
		switch tr.Type {
		case tpc.RecBegin:
			d.Detail = "participants " + strings.Join(tr.Participants, ", ") + " (not forced)"
		case tpc.RecCommit:
			var votes []string
			for i, p := range tr.Participants {
				votes = append(votes, p+" "+tr.Votes[i].String())
			}
			d.Detail = "votes " + strings.Join(votes, ", ") + " (forced: on disk before any COMMIT was sent)"
		case tpc.RecAbort:
			d.Detail = tr.Reason
		case tpc.RecEnd:
			d.Detail = "every participant acknowledged (not forced)"
		}
		r.records = append(r.records, d)
		return nil
	})
	for _, name := range travel.ServiceNames() {
		dir := filepath.Join(r.cl.services[name].dir, "store", "wal")
		_, err := wal.Inspect(wal.Options{Dir: dir}, 0, func(rec wal.Record) error {
			e, ok := filestore.DecodeLogEntry(rec.Type, rec.Payload)
			if !ok || e.ID != r.inDoubt {
				return nil
			}
			d := demoRecord{Log: name, Seq: rec.Seq}
			switch e.Kind {
			case "prepared":
				d.Type, d.Detail = "prepared", "holds "+string(e.Body)+" (forced: on disk before the yes vote)"
			case "commit":
				d.Type, d.Detail = "commit", "confirmed (forced: on disk before the acknowledgement)"
				if name == travel.Hotels {
					d.Detail += "; written after the restart"
				}
			case "abort":
				d.Type, d.Detail = "abort", string(e.Body)
			case "one-phase":
				d.Type, d.Detail = "one-phase", string(e.Body)
			}
			r.records = append(r.records, d)
			return nil
		})
		if r.recordsErr == nil && err != nil {
			r.recordsErr = fmt.Errorf("read the %s log: %w", name, err)
		}
	}
}

// summarize prints the summary and reports whether every check held.
func (r *demoRun) summarize(w io.Writer, asJSON bool) bool {
	var s demoSummary
	s.OK = true
	for _, c := range r.checks {
		s.OK = s.OK && c.OK
	}
	if r.recordsErr != nil || len(r.records) == 0 {
		s.OK = false
		detail := "none found"
		if r.recordsErr != nil {
			detail = r.recordsErr.Error()
		}
		r.checks = append(r.checks, demoCheck{Name: "the in-doubt trip's log records are readable", Detail: detail})
	}
	s.Seconds = time.Since(r.started).Seconds()
	s.Trips = len(r.bookings)
	s.AbortReasons = map[string]int{}
	for _, b := range r.bookings {
		switch b.final {
		case concord.OutcomeCommitted:
			s.Committed++
		case concord.OutcomeAborted:
			s.Aborted++
			s.AbortReasons[abortReason(b)]++
		}
		if b.resp.Outcome == concord.OutcomePending && b.err == nil {
			s.PendingFirst++
		}
	}
	s.Inventories = r.inventories
	s.InDoubt.ID, s.InDoubt.HotelAttempts, s.InDoubt.LastError = r.inDoubt, r.inDoubtTries, r.inDoubtErr
	s.InDoubt.Recovered, s.InDoubt.UnsyncedLost, s.InDoubt.CommittedAtAll = r.recovered, r.droppedBytes, r.inDoubtOK
	s.Records, s.Checks = r.records, r.checks
	if asJSON {
		jsonOut(w, s)
		return s.OK
	}

	fmt.Fprintf(w, "\nSummary (%.1f s)\n", s.Seconds)
	fmt.Fprintf(w, "  trips: %d booked, %d committed, %d aborted", s.Trips, s.Committed, s.Aborted)
	if s.PendingFirst > 0 {
		fmt.Fprintf(w, " (%d answered pending at first, settled later)", s.PendingFirst)
	}
	fmt.Fprintln(w)
	var reasons []string
	for k, v := range s.AbortReasons {
		reasons = append(reasons, fmt.Sprintf("%d %s", v, k))
	}
	sort.Slice(reasons, func(i, j int) bool { return reasons[i] > reasons[j] })
	if len(reasons) > 0 {
		fmt.Fprintf(w, "  aborted because: %s\n", strings.Join(reasons, "; "))
	}
	fmt.Fprintln(w, "\n  inventories (available + held + confirmed = capacity):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  SERVICE\tSKU\tCAPACITY\tAVAILABLE\tHELD\tCONFIRMED\tCHECK\t")
	for _, name := range travel.ServiceNames() {
		for _, it := range s.Inventories[name] {
			ok := "ok"
			if it.Available+it.Held+it.Confirmed != it.Capacity || it.Held != 0 {
				ok = "BROKEN"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%d\t%d\t%s\t\n", name, it.SKU, it.Capacity, it.Available, it.Held, it.Confirmed, ok)
		}
	}
	tw.Flush()
	fmt.Fprintf(w, "\n  log records of %s, the trip that waited in doubt:\n", r.inDoubt)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, rec := range s.Records {
		fmt.Fprintf(tw, "    %s\t#%d\t%s\t%s\n", rec.Log, rec.Seq, rec.Type, rec.Detail)
	}
	tw.Flush()
	fmt.Fprintln(w, "\n  checks:")
	for _, c := range s.Checks {
		mark := "ok  "
		if !c.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(w, "    %s %s", mark, c.Name)
		if c.Detail != "" && (!c.OK || strings.HasPrefix(c.Name, "the in-doubt") || strings.HasPrefix(c.Name, "the run")) {
			fmt.Fprintf(w, " (%s)", c.Detail)
		}
		fmt.Fprintln(w)
	}
	if s.OK {
		fmt.Fprintln(w, "\nall checks passed")
	} else {
		fmt.Fprintln(w, "\nSOME CHECKS FAILED")
	}
	return s.OK
}

// abortReason names why a trip aborted, briefly: the first no vote's
// service and reason up to its details, or the coordinator's reason.
func abortReason(b demoBooking) string {
	for _, br := range b.resp.Branches {
		if br.Vote != concord.VoteYes && br.Vote != concord.VoteNone {
			reason := br.Reason
			if reason == "" { // a lone participant's refusal is in the transaction's reason
				reason = strings.TrimPrefix(b.resp.Reason, br.Participant+": ")
			}
			if i := strings.Index(reason, ":"); i > 0 {
				reason = reason[:i]
			}
			if reason == "" {
				reason = br.Vote.String()
			}
			return br.Participant + " " + reason
		}
	}
	if b.resp.Reason != "" {
		return b.resp.Reason
	}
	return "unknown"
}
