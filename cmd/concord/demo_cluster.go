package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// demoStock is the demo's inventory: plenty of most things, and a flight
// (FL300) and a car (C-VAN) that sell out.
var demoStock = map[string][]travel.Stock{
	travel.Flights: {{SKU: "FL100", Capacity: 400}, {SKU: "FL200", Capacity: 150}, {SKU: "FL300", Capacity: 6}},
	travel.Hotels:  {{SKU: "H-PARIS", Capacity: 300}, {SKU: "H-ROME", Capacity: 200}, {SKU: "H-OSLO", Capacity: 80}},
	travel.Cars:    {{SKU: "C-ECON", Capacity: 200}, {SKU: "C-SUV", Capacity: 100}, {SKU: "C-VAN", Capacity: 4}},
}

// demoService is one travel service of the demo, in this process: its own
// loopback port, data directory and file system, which a crash cuts like a
// power loss.
type demoService struct {
	name     string
	addr     string // fixed at the first listen, reused on restart
	dir      string
	fs       *crashFS
	coordURL string

	mu    sync.Mutex
	svc   *travel.Service
	store *travel.FileStore
	hs    *http.Server
	// crashOn, when set, sees the ids of every COMMIT request first;
	// returning true crashes the service instead of serving the request.
	crashOn func(ids []concord.TxID) bool
	// recovered are the reservations the store held prepared when it was
	// last opened, and their state then.
	recovered []travel.Reservation
}

func newDemoService(name, dir string) (*demoService, net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("%s: listen: %w", name, err)
	}
	return &demoService{name: name, addr: ln.Addr().String(), dir: dir, fs: newCrashFS()}, ln, nil
}

func (d *demoService) url() string { return "http://" + d.addr }

// start opens the store (recovering what is durable), starts the service
// and serves on ln.
func (d *demoService) start(ln net.Listener) error {
	st, err := travel.OpenFileStore(travel.StoreConfig{Service: d.name, Dir: d.dir, FS: d.fs, Stock: demoStock[d.name]})
	if err != nil {
		ln.Close()
		return fmt.Errorf("%s: %w", d.name, err)
	}
	ids, err := st.Recover(context.Background())
	if err != nil {
		st.Close()
		ln.Close()
		return fmt.Errorf("%s: %w", d.name, err)
	}
	var recovered []travel.Reservation
	for _, tx := range ids {
		if res, err := st.Reservation(context.Background(), tx.ID); err == nil {
			recovered = append(recovered, res)
		}
	}
	svc, err := travel.New(travel.Options{Name: d.name, Store: st, Server: participant.Options{
		Coordinator:  d.coordURL,
		InDoubtAfter: time.Second,
		QueryMin:     100 * time.Millisecond,
		QueryMax:     time.Second,
	}})
	if err != nil {
		st.Close()
		ln.Close()
		return fmt.Errorf("%s: %w", d.name, err)
	}
	if err := svc.Start(context.Background()); err != nil {
		svc.Close()
		ln.Close()
		return err
	}
	hs := &http.Server{Handler: d.gate(svc.Handler()), ReadHeaderTimeout: 10 * time.Second}
	d.mu.Lock()
	d.svc, d.store, d.hs, d.recovered = svc, st, hs, recovered
	d.mu.Unlock()
	go hs.Serve(ln)
	return nil
}

// gate lets crashOn see COMMIT requests before the service does.
func (d *demoService) gate(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		hook := d.crashOn
		d.mu.Unlock()
		if hook != nil && r.Method == http.MethodPost && r.URL.Path == wire.PathCommit {
			body, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
			if err == nil {
				r.Body = io.NopCloser(bytes.NewReader(body))
				var req wire.DecisionRequest
				if json.Unmarshal(body, &req) == nil && hook(req.IDs) {
					d.crash()
					return
				}
			}
		}
		h.ServeHTTP(w, r)
	})
}

// crash kills the service as a power cut would: the server and every
// connection close at once, the file system loses what was not synced and
// the old service is dropped; nothing it does afterwards reaches storage.
func (d *demoService) crash() {
	d.mu.Lock()
	svc, hs := d.svc, d.hs
	d.svc, d.store, d.hs, d.crashOn = nil, nil, nil, nil
	d.mu.Unlock()
	if hs != nil {
		hs.Close()
	}
	d.fs.crash()
	if svc != nil {
		svc.Close()
	}
}

// restart brings a crashed service back on the same port and data.
func (d *demoService) restart() error {
	d.fs.revive()
	ln, err := net.Listen("tcp", d.addr)
	if err != nil {
		return fmt.Errorf("%s: listen again on %s: %w", d.name, d.addr, err)
	}
	return d.start(ln)
}

// current returns the running service and store, or nils while down.
func (d *demoService) current() (*travel.Service, *travel.FileStore) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.svc, d.store
}

// stop shuts the service down cleanly.
func (d *demoService) stop() error {
	d.mu.Lock()
	svc, hs := d.svc, d.hs
	d.svc, d.store, d.hs = nil, nil, nil
	d.mu.Unlock()
	if svc == nil {
		return nil
	}
	// Requests in flight get a moment to finish; connections opened but
	// never used would hold Shutdown for seconds, so then close outright.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
	}
	return svc.Close()
}

// demoCluster is the coordinator and the three services.
type demoCluster struct {
	coordDir string
	coord    *coordinator.Coordinator
	services map[string]*demoService
}

func startDemoCluster(data string) (*demoCluster, error) {
	cl := &demoCluster{coordDir: filepath.Join(data, "coordinator", "wal"), services: map[string]*demoService{}}
	listeners := map[string]net.Listener{}
	urls := map[string]string{}
	fail := func(err error) (*demoCluster, error) {
		for _, ln := range listeners {
			ln.Close()
		}
		cl.close()
		return nil, err
	}
	for _, name := range travel.ServiceNames() {
		d, ln, err := newDemoService(name, filepath.Join(data, name))
		if err != nil {
			return fail(err)
		}
		cl.services[name], listeners[name], urls[name] = d, ln, d.url()
	}
	cln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(fmt.Errorf("coordinator: listen: %w", err))
	}
	c, err := coordinator.New(coordinator.Options{
		Dir:            cl.coordDir,
		Participants:   urls,
		DefaultTimeout: 2 * time.Second,
		AnswerGrace:    time.Second,
		RetryMin:       50 * time.Millisecond,
		RetryMax:       400 * time.Millisecond,
	})
	if err != nil {
		cln.Close()
		return fail(err)
	}
	if err := c.Start(cln); err != nil {
		c.Close()
		return fail(err)
	}
	cl.coord = c
	for _, name := range travel.ServiceNames() {
		d := cl.services[name]
		d.coordURL = c.URL()
		ln := listeners[name]
		delete(listeners, name)
		if err := d.start(ln); err != nil {
			return fail(err)
		}
	}
	return cl, nil
}

// close stops the coordinator, then the services, cleanly.
func (cl *demoCluster) close() error {
	var errs []error
	if cl.coord != nil {
		errs = append(errs, cl.coord.Close())
		cl.coord = nil
	}
	for _, d := range cl.services {
		errs = append(errs, d.stop())
	}
	return errors.Join(errs...)
}
