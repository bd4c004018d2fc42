package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/concordtx/concord/wire"
)

// Latency summarises the latencies of the answered transactions, in
// milliseconds.
type Latency struct {
	P50 float64 `json:"p50_ms"`
	P90 float64 `json:"p90_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

func summarize(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := min(len(ds)-1, int(q*float64(len(ds))))
		return ms(ds[i])
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(ds[len(ds)-1])}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Fsyncs are log syncs per transaction; a side whose counters could not be
// read is -1.
type Fsyncs struct {
	Coordinator  float64 `json:"coordinator"`
	Participants float64 `json:"participants"`
	Total        float64 `json:"total"`
}

// PhaseResult is one load phase's figures.
type PhaseResult struct {
	Concurrency  int     `json:"concurrency"`
	Participants int     `json:"participants"`
	Seconds      float64 `json:"seconds"`
	LoadAverage  float64 `json:"load_average"` // 1-minute load average at the phase's end
	Committed    int64   `json:"committed"`
	Aborted      int64   `json:"aborted"`
	Errors       int64   `json:"errors"`
	FirstError   string  `json:"first_error,omitempty"`

	CommittedPerSec float64 `json:"committed_per_sec"`
	AbortedPerSec   float64 `json:"aborted_per_sec"`
	Latency         Latency `json:"latency"`
	// RequestsPerTx is HTTP requests from the coordinator to participants
	// per transaction (-1 when the coordinator's counters were not read).
	RequestsPerTx float64 `json:"participant_requests_per_tx"`
	FsyncsPerTx   Fsyncs  `json:"fsyncs_per_tx"`
	// CPUPerTx is each process's CPU time (user+system) per answered
	// transaction in microseconds, "bench" being the load generator and
	// "total" the sum; it measures cost independently of how much of the
	// machine other work took.
	CPUPerTx map[string]float64 `json:"cpu_us_per_tx,omitempty"`
	// FloorRatio is p50 over the floor of one commit (one-phase for one
	// participant); FloorRatioSharedDisk the same over the floor with the
	// participants' prepares sharing one disk. Set for single-client
	// phases only.
	FloorRatio           float64 `json:"floor_ratio,omitempty"`
	FloorRatioSharedDisk float64 `json:"floor_ratio_shared_disk,omitempty"`
}

// ProcessRuntime is one process's runtime figures before the first phase and
// after the last.
type ProcessRuntime struct {
	Start wire.RuntimeStats `json:"start"`
	End   wire.RuntimeStats `json:"end"`
}

// Result is a whole bench run.
type Result struct {
	Started     bool    `json:"started_processes"` // the bench started the system itself
	LoadAverage float64 `json:"load_average"`      // 1-minute load average at the start
	AbortRatio  float64 `json:"abort_ratio"`
	// ServiceProcs is the GOMAXPROCS the started services ran with; 0 when
	// Go's default (or when the bench started nothing).
	ServiceProcs int                       `json:"service_procs,omitempty"`
	Floor        *Floor                    `json:"floor,omitempty"`
	Phases       []PhaseResult             `json:"phases"`
	Runtime      map[string]ProcessRuntime `json:"runtime,omitempty"`
	// Samples are every process's runtime figures taken during the phases,
	// every SampleEvery, to show whether memory and goroutines stay flat.
	Samples []RuntimeSample `json:"runtime_samples,omitempty"`
}

// RuntimeSample is every process's runtime figures at one moment.
type RuntimeSample struct {
	Phase     int                          `json:"phase"`   // index into Phases
	Seconds   float64                      `json:"seconds"` // into the phase
	Processes map[string]wire.RuntimeStats `json:"processes"`
}

// OK reports whether no transaction failed.
func (r *Result) OK() bool {
	for _, p := range r.Phases {
		if p.Errors > 0 {
			return false
		}
	}
	return true
}

// WriteTable writes r for people: one row per phase, then the floor and the
// processes' memory and goroutines.
func (r *Result) WriteTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "clients\tparts\tcommitted/s\taborted/s\terrors\tp50 ms\tp90 ms\tp99 ms\tmax ms\treq/tx\tfsync/tx coord\tfsync/tx parts\tfsync/tx total\tload\t")
	for _, p := range r.Phases {
		fmt.Fprintf(tw, "%d\t%d\t%.0f\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.1f\t%s\t%s\t%s\t%s\t%.1f\t\n",
			p.Concurrency, p.Participants, p.CommittedPerSec, p.AbortedPerSec, p.Errors,
			p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.Max,
			perTx(p.RequestsPerTx), perTx(p.FsyncsPerTx.Coordinator), perTx(p.FsyncsPerTx.Participants),
			perTx(p.FsyncsPerTx.Total), p.LoadAverage)
	}
	tw.Flush()
	for _, p := range r.Phases {
		if len(p.CPUPerTx) > 0 {
			names := make([]string, 0, len(p.CPUPerTx))
			for n := range p.CPUPerTx {
				if n != "total" {
					names = append(names, n)
				}
			}
			slices.Sort(names)
			parts := make([]string, len(names))
			for i, n := range names {
				parts[i] = fmt.Sprintf("%s %.0f", n, p.CPUPerTx[n])
			}
			fmt.Fprintf(w, "CPU us/tx (%d clients, %d participants): total %.0f = %s\n",
				p.Concurrency, p.Participants, p.CPUPerTx["total"], strings.Join(parts, ", "))
		}
	}
	for _, p := range r.Phases {
		if p.FirstError != "" {
			fmt.Fprintf(w, "first error (%d clients, %d participants): %s\n", p.Concurrency, p.Participants, p.FirstError)
		}
	}
	if f := r.Floor; f != nil {
		fmt.Fprintf(w, "\nfloor on this machine: fdatasync of one append %.3f ms, loopback round trip %.3f ms\n",
			ms(f.Fsync), ms(f.RoundTrip))
		fmt.Fprintf(w, "  one commit: %.3f ms (2 fsyncs + 2 round trips); one-phase: %.3f ms\n", ms(f.Commit), ms(f.OnePhase))
		fmt.Fprintf(w, "  3 appends+fdatasyncs to 3 logs at once: %.3f ms, so a 3-participant commit on one disk: %.3f ms\n",
			ms(f.Fsync3), ms(f.CommitSharedDisk))
		for _, p := range r.Phases {
			if p.FloorRatio > 0 {
				fmt.Fprintf(w, "  1 client, %d participant(s): p50 %.3f ms = %.2fx the floor", p.Participants, p.Latency.P50, p.FloorRatio)
				if p.FloorRatioSharedDisk > 0 {
					fmt.Fprintf(w, " (%.2fx the shared-disk floor)", p.FloorRatioSharedDisk)
				}
				fmt.Fprintln(w)
			}
		}
	}
	if len(r.Runtime) > 0 {
		fmt.Fprintln(w, "\nprocesses (start -> end):")
		names := make([]string, 0, len(r.Runtime))
		for n := range r.Runtime {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			rt := r.Runtime[n]
			fmt.Fprintf(w, "  %-12s heap %s -> %s, goroutines %d -> %d\n", n,
				mib(rt.Start.HeapAllocBytes), mib(rt.End.HeapAllocBytes), rt.Start.Goroutines, rt.End.Goroutines)
		}
	}
	if len(r.Samples) > 0 {
		fmt.Fprintln(w, "\nduring the run (heap MiB / goroutines):")
		for _, sm := range r.Samples {
			names := make([]string, 0, len(sm.Processes))
			for n := range sm.Processes {
				names = append(names, n)
			}
			slices.Sort(names)
			parts := make([]string, len(names))
			for i, n := range names {
				rt := sm.Processes[n]
				parts[i] = fmt.Sprintf("%s %.1f/%d", n, float64(rt.HeapAllocBytes)/(1<<20), rt.Goroutines)
			}
			fmt.Fprintf(w, "  phase %d at %4.0fs: %s\n", sm.Phase+1, sm.Seconds, strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(w, "\nload average at start %.2f; abort ratio %.2f", r.LoadAverage, r.AbortRatio)
	if r.ServiceProcs > 0 {
		fmt.Fprintf(w, "; services ran with GOMAXPROCS=%d", r.ServiceProcs)
	}
	fmt.Fprintln(w)
}

func perTx(v float64) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.3f", v)
}

func mib(b uint64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(b)/(1<<20)), ".0") + " MiB"
}
