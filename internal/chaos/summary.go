package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/concordtx/concord/internal/faultproxy"
)

// Summary is the result of a chaos run. It encodes as the JSON summary of
// `concord chaos --json`.
type Summary struct {
	Seed            uint64  `json:"seed"`
	DurationSeconds float64 `json:"duration_seconds"` // the fault phase
	Dir             string  `json:"dir"`              // data directories and logs

	Transactions int `json:"transactions"`
	Committed    int `json:"committed"`  // answers the clients got
	Aborted      int `json:"aborted"`    // answers the clients got
	AbortedNo    int `json:"aborted_no"` // of those, refused by a service (a no vote, e.g. sold out)
	Unanswered   int `json:"unanswered"` // no answer after every retry
	Resubmitted  int `json:"resubmitted"`

	Kills           map[string]int   `json:"kills"` // SIGKILLs the runner sent, per process
	KillsTotal      int              `json:"kills_total"`
	GracefulStops   int              `json:"graceful_stops"`
	Restarts        int              `json:"restarts"`
	FailpointsArmed map[string]int   `json:"failpoints_armed"`
	FailpointsFired map[string]int   `json:"failpoints_fired"`
	FiredTotal      int              `json:"failpoints_fired_total"`
	NetworkFaults   map[string]int   `json:"network_faults"` // episodes per kind
	Partitions      int              `json:"partitions"`
	Proxy           faultproxy.Stats `json:"proxy"` // summed over the proxies

	Settled        bool       `json:"settled"` // nothing pending or prepared once healed
	SettleSeconds  float64    `json:"settle_seconds"`
	CoordinatorLog logUsage   `json:"coordinator_log"`
	Compaction     Compaction `json:"compaction"`
	Forgotten      int        `json:"forgotten"`     // reservations past a service's retention
	InexactStock   []string   `json:"inexact_stock"` // services whose totals could not be compared

	Violations  []string `json:"violations"`
	Interrupted bool     `json:"interrupted"`
	Pass        bool     `json:"pass"`
}

// WriteText prints the summary for people; rerun is the command that replays
// the run's seed.
func (s *Summary) WriteText(w io.Writer, rerun string) {
	status := "PASS"
	switch {
	case s.Interrupted:
		status = "INTERRUPTED"
	case !s.Pass:
		status = "FAIL"
	}
	fmt.Fprintf(w, "chaos %s: seed %d, %.0fs of faults\n", status, s.Seed, s.DurationSeconds)
	fmt.Fprintf(w, "  transactions  %d (%d committed, %d aborted of which %d by a no vote, %d without answer; %d resubmitted with the same id)\n",
		s.Transactions, s.Committed, s.Aborted, s.AbortedNo, s.Unanswered, s.Resubmitted)
	fmt.Fprintf(w, "  kills         %d kill -9 (%s), %d graceful stops, %d restarts\n",
		s.KillsTotal, perName(s.Kills), s.GracefulStops, s.Restarts)
	fmt.Fprintf(w, "  failpoints    %d armed, %d fired (%s)\n", sumInts(s.FailpointsArmed), s.FiredTotal, perName(s.FailpointsFired))
	fmt.Fprintf(w, "  partitions    %d; other network faults: %s\n", s.Partitions, perName(s.NetworkFaults))
	fmt.Fprintf(w, "  proxies       %d requests: %d dropped by partitions, %d lost, %d answers lost, %d duplicated, %d delayed\n",
		s.Proxy.Requests, s.Proxy.Dropped, s.Proxy.ResetsBefore, s.Proxy.ResetsAfter, s.Proxy.Duplicated, s.Proxy.Delayed)
	if s.Settled {
		fmt.Fprintf(w, "  settled in    %.1fs (nothing pending at the coordinator, nothing prepared at a service)\n", s.SettleSeconds)
	} else if !s.Interrupted {
		fmt.Fprintf(w, "  not settled   after %.1fs (see violations)\n", s.SettleSeconds)
	}
	fmt.Fprintf(w, "  coordinator   log of %d segment(s), %s (first: %s); %s\n", s.CoordinatorLog.Segments, bytesText(s.CoordinatorLog.Bytes),
		strings.Join(s.CoordinatorLog.Names[:min(1, len(s.CoordinatorLog.Names))], ""), compactionText(s.Compaction))
	if s.Forgotten > 0 || len(s.InexactStock) > 0 {
		fmt.Fprintf(w, "  retention     %d reservations forgotten; confirmed totals not compared at: %s\n", s.Forgotten, strings.Join(s.InexactStock, ", "))
	}
	fmt.Fprintf(w, "  violations    %d\n", len(s.Violations))
	for i, v := range s.Violations {
		if i == 50 {
			fmt.Fprintf(w, "    ... and %d more (see --json)\n", len(s.Violations)-50)
			break
		}
		fmt.Fprintf(w, "    - %s\n", v)
	}
	if s.Interrupted {
		fmt.Fprintln(w, "  interrupted before the end: nothing was healed or checked")
	}
	fmt.Fprintf(w, "  logs          %s\n", s.Dir)
	fmt.Fprintf(w, "  rerun         %s\n", rerun)
}

func perName(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, m[k])
	}
	return strings.Join(parts, ", ")
}

func sumInts(m map[string]int) int { return sum(m) }

func bytesText(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func compactionText(c Compaction) string {
	switch {
	case !c.Checked:
		return "compaction not checked (no /v1/stats)"
	case c.Compacted:
		return fmt.Sprintf("compacted with nothing live (%d segments removed since its last start)", c.SegmentsRemoved)
	}
	return fmt.Sprintf("not compacted: %d live transactions", c.Live)
}
