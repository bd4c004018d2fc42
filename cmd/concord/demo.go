package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

func init() {
	register("demo", "run a coordinator and the travel services in one process, book trips through a crash, and check the result", runDemo)
}

// demoRun is one run of the demo: its settings, the cluster, and what
// happened, for the checks and the summary.
type demoRun struct {
	trips, workers int
	seed           uint64
	prefix         string // transaction id prefix, unique per run
	progress       io.Writer
	started        time.Time
	ctx            context.Context // ends on SIGINT or SIGTERM: the run stops early

	cl     *demoCluster
	client *client.Client

	mu       sync.Mutex
	bookings []demoBooking
	before   map[string][]travel.Item // inventories at the start

	inDoubt      concord.TxID
	inDoubtOK    bool   // committed at every service after the restart
	inDoubtTries int    // delivery attempts to the hotel while it was down
	inDoubtErr   string // the coordinator's last delivery error
	recovered    int    // reservations the hotel recovered in doubt
	droppedBytes int64
	droppedFiles int
	records      []demoRecord
	recordsErr   error
	inventories  map[string][]travel.Item
	checks       []demoCheck
}

// demoBooking is one trip and what the coordinator answered.
type demoBooking struct {
	req   wire.SubmitRequest
	resp  wire.SubmitResponse
	final concord.Outcome // the answer, or the coordinator's record once a pending answer settled
	err   error
	phase string
}

func runDemo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	data := fs.String("data", "", "data `directory` (default: a temporary one, removed at exit)")
	trips := fs.Int("trips", 300, "trips to book")
	workers := fs.Int("workers", 16, "concurrent clients")
	seed := fs.Uint64("seed", 1, "seed of the trips' random choices")
	asJSON := fs.Bool("json", false, "print the summary as JSON on stdout (progress goes to stderr)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord demo [--data DIR] [--trips N] [--workers N] [--seed N] [--json]")
		fmt.Fprintln(stderr, "Starts a coordinator and the flights, hotels and cars services in this process on loopback")
		fmt.Fprintln(stderr, "ports, books trips concurrently, crashes the hotel service while a trip is in doubt, brings")
		fmt.Fprintln(stderr, "it back, and checks atomicity and conservation. Exit status 0 only if every check holds.")
		fs.PrintDefaults()
	}
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	fail := failer("concord demo", asJSON, stdout, stderr)
	usageErr := func(format string, a ...any) int { return fail(2, format, a...) }
	switch {
	case *trips < 10 || *trips > 100_000:
		return usageErr("--trips %d: want 10 to 100000", *trips)
	case *workers < 1 || *workers > 1024:
		return usageErr("--workers %d: want 1 to 1024", *workers)
	}
	progress := stdout
	if *asJSON {
		progress = stderr
	}
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "concord-demo-")
		if err != nil {
			return fail(1, "%v", err)
		}
		defer os.RemoveAll(tmp)
		dir = tmp
		fmt.Fprintf(progress, "data in %s (temporary, removed at exit)\n", dir)
	} else {
		fmt.Fprintf(progress, "data in %s\n", dir)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var rnd [4]byte
	rand.Read(rnd[:])
	r := &demoRun{trips: *trips, workers: *workers, seed: *seed, prefix: "demo-" + hex.EncodeToString(rnd[:]),
		progress: progress, started: time.Now(), ctx: ctx}
	err := r.run(dir)
	if ctx.Err() != nil {
		err = errors.New("interrupted")
	}
	if r.cl != nil {
		if cerr := r.cl.close(); cerr != nil && err == nil {
			err = fmt.Errorf("shut down: %w", cerr)
		}
	}
	if err != nil {
		return fail(1, "%v", err)
	}
	r.readRecords()
	ok := r.summarize(stdout, *asJSON)
	if !ok {
		return 1
	}
	return 0
}

func (r *demoRun) say(format string, a ...any) { fmt.Fprintf(r.progress, format+"\n", a...) }

// run starts the cluster and drives the scenario.
func (r *demoRun) run(dir string) error {
	cl, err := startDemoCluster(dir)
	if err != nil {
		return err
	}
	r.cl = cl
	if r.client, err = client.New(client.Options{URL: cl.coord.URL()}); err != nil {
		return err
	}
	r.say("coordinator  %s", cl.coord.URL())
	// A previous run on the same data may have left work in flight: let it
	// settle first, so that this run's checks count only this run.
	if err := r.quiesce(30 * time.Second); err != nil {
		return fmt.Errorf("settle what the data directory held: %w", err)
	}
	r.before = map[string][]travel.Item{}
	for _, name := range travel.ServiceNames() {
		d := cl.services[name]
		_, st := d.current()
		items, err := st.Items(r.ctx)
		if err != nil {
			return err
		}
		r.before[name] = items
		r.say("%-12s %s  %s", name, d.url(), travel.FormatInventory(demoStock[name]))
	}

	first := r.trips * 45 / 100
	during := r.trips / 10
	last := r.trips - first - during

	r.say("\n[1/5] booking %d trips with %d concurrent clients", first, r.workers)
	r.book("trip", 0, first)

	r.say("\n[2/5] crashing the hotel service while a trip is in doubt")
	if err := r.crashHotelInDoubt(); err != nil {
		return err
	}
	r.say("      booking %d trips while hotels is down (those with a hotel abort)", during)
	r.book("down", first, during)

	r.say("\n[3/5] restarting hotels on the same port and data")
	if err := r.restartHotel(); err != nil {
		return err
	}

	r.say("\n[4/5] booking %d more trips", last)
	r.book("trip", first+during, last)

	r.say("\n[5/5] waiting for every decision to reach every service, then checking")
	if err := r.quiesce(30 * time.Second); err != nil {
		return err
	}
	r.check()
	return nil
}

// crashHotelInDoubt books one trip at all three services, crashes the hotel
// when that trip's COMMIT reaches it, and shows the coordinator retrying.
func (r *demoRun) crashHotelInDoubt() error {
	hotel := r.cl.services[travel.Hotels]
	r.inDoubt = concord.TxID(r.prefix + "-in-doubt")
	crashed := make(chan struct{})
	hotel.mu.Lock()
	hotel.crashOn = func(ids []concord.TxID) bool {
		if !slices.Contains(ids, r.inDoubt) {
			return false
		}
		close(crashed)
		return true
	}
	hotel.mu.Unlock()

	trip := wire.SubmitRequest{ID: r.inDoubt, Branches: []wire.Branch{
		{Participant: travel.Flights, Payload: travel.Request{SKU: "FL100", Quantity: 1}.Payload()},
		{Participant: travel.Hotels, Payload: travel.Request{SKU: "H-PARIS", Quantity: 2}.Payload()},
		{Participant: travel.Cars, Payload: travel.Request{SKU: "C-ECON", Quantity: 1}.Payload()},
	}}
	r.say("      hotels will crash when the COMMIT of %s reaches it", r.inDoubt)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	resp, err := r.client.Submit(ctx, trip)
	r.mu.Lock()
	r.bookings = append(r.bookings, demoBooking{req: trip, resp: resp, final: resp.Outcome, err: err, phase: "in-doubt"})
	r.mu.Unlock()
	if err != nil {
		return fmt.Errorf("book %s: %w", r.inDoubt, err)
	}
	votes := ""
	for _, b := range resp.Branches {
		votes += fmt.Sprintf(" %s %s,", b.Participant, b.Vote)
	}
	r.say("      %s: %s (votes:%s; the decision is on disk)", r.inDoubt, resp.Outcome, votes[:max(0, len(votes)-1)])
	if resp.Outcome != concord.OutcomeCommitted {
		return fmt.Errorf("the in-doubt trip %s was %s, not committed: %s", r.inDoubt, resp.Outcome, resp.Reason)
	}
	select {
	case <-crashed:
	case <-ctx.Done():
		return fmt.Errorf("the COMMIT of %s never reached the hotel", r.inDoubt)
	}
	r.droppedBytes, r.droppedFiles = hotel.fs.dropped()
	lost := "nothing unsynced was pending"
	if r.droppedBytes > 0 {
		lost = fmt.Sprintf("%d bytes not yet synced were lost", r.droppedBytes)
	}
	r.say("      hotels CRASHED on receiving that COMMIT: server and connections gone, files cut back to what was synced (%s)", lost)

	// The decision is commit, the hotel is down: the coordinator retries.
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := r.client.Get(ctx, r.inDoubt)
		if err == nil {
			for _, b := range st.Branches {
				if b.Participant == travel.Hotels && !b.Acknowledged && b.Attempts >= 3 {
					r.inDoubtTries, r.inDoubtErr = b.Attempts, b.LastError
					r.say("      coordinator: %s is %s; hotels has not acknowledged after %d attempts (last error: %s); it keeps retrying",
						r.inDoubt, st.State, b.Attempts, b.LastError)
					list, err := r.client.List(ctx, "pending", 10)
					if err == nil {
						r.say("      GET /v1/transactions?state=pending lists %d transaction(s) waiting, %s among them", len(list.Transactions), r.inDoubt)
					}
					return nil
				}
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the coordinator did not retry the hotel for %s: %+v, %v", r.inDoubt, st, err)
		}
		time.Sleep(20 * time.Millisecond) // the coordinator's retries run on real time
	}
}

// restartHotel brings the hotel back and waits for the in-doubt trip to
// finish there.
func (r *demoRun) restartHotel() error {
	hotel := r.cl.services[travel.Hotels]
	if err := hotel.restart(); err != nil {
		return err
	}
	_, st := hotel.current()
	hotel.mu.Lock()
	recovered := hotel.recovered
	hotel.mu.Unlock()
	r.recovered = len(recovered)
	found := false
	for _, res := range recovered {
		if res.ID == r.inDoubt {
			found = true
			r.say("      hotels is back: %d reservation(s) recovered in doubt from its log, %s among them (%s x%d, %s)",
				len(recovered), r.inDoubt, res.SKU, res.Quantity, res.State)
		}
	}
	if !found {
		return fmt.Errorf("after the restart the hotel did not recover %s in doubt; it recovered %v", r.inDoubt, recovered)
	}
	ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
	defer cancel()
	for {
		tx, err := r.client.Get(ctx, r.inDoubt)
		if err == nil && tx.Done {
			res, err := st.Reservation(ctx, r.inDoubt)
			if err != nil {
				return err
			}
			r.say("      %s: every service acknowledged; hotels holds it %s", r.inDoubt, res.State)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s did not finish after the hotel came back: %+v, %v", r.inDoubt, tx, err)
		}
		time.Sleep(20 * time.Millisecond) // waiting on the coordinator's real-time retries
	}
}

// quiesce waits until nothing is pending at the coordinator and no service
// holds a prepared reservation.
func (r *demoRun) quiesce(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	for {
		state := ""
		list, err := r.client.List(ctx, "pending", 10)
		switch {
		case err != nil:
			state = err.Error()
		case len(list.Transactions) > 0:
			state = fmt.Sprintf("%d transaction(s) pending at the coordinator", len(list.Transactions))
		default:
			for _, name := range travel.ServiceNames() {
				_, st := r.cl.services[name].current()
				p, err := st.Reservations(ctx, travel.StatePrepared)
				if err != nil || len(p) > 0 {
					state = fmt.Sprintf("%s holds %d prepared reservation(s) %v", name, len(p), err)
					break
				}
			}
		}
		if state == "" {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("not settled after %v: %s", timeout, state)
		}
		time.Sleep(20 * time.Millisecond) // phase 2 and in-doubt queries run on real time
	}
}

// jsonOut writes v as indented JSON.
func jsonOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
