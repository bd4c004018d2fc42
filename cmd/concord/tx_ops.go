package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/concordtx/concord/wire"
)

// printTimeline prints a transaction's events for people, oldest first.
func printTimeline(w io.Writer, tl wire.TxTimeline) {
	if tl.Traceparent != "" {
		fmt.Fprintf(w, "\ntrace:  %s\n", tl.Traceparent)
	}
	if len(tl.Events) == 0 {
		fmt.Fprintln(w, "\ntimeline: none kept (finished long ago, or before the coordinator restarted)")
		return
	}
	fmt.Fprintln(w, "\ntimeline:")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME (UTC)\tSINCE START\tEVENT\tPARTICIPANT\tDETAIL")
	start := tl.Events[0].At
	for i, e := range tl.Events {
		if i == 16 && tl.Dropped > 0 {
			fmt.Fprintf(tw, "...\t\t%d events not kept\t\t\n", tl.Dropped)
		}
		ev := e.Kind
		if e.Value != "" {
			ev += " " + e.Value
		}
		if e.Attempt > 1 {
			ev += fmt.Sprintf(" (attempt %d)", e.Attempt)
		}
		fmt.Fprintf(tw, "%s\t+%s\t%s\t%s\t%s\n", e.At.UTC().Format("15:04:05.000"), e.At.Sub(start).Round(time.Millisecond),
			ev, dash(e.Participant), dash(e.Detail))
	}
	tw.Flush()
}
