package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/failpoint"
	"github.com/concordtx/concord/internal/faultproxy"
)

// stock is one SKU a service offers in a chaos run.
type stock struct {
	sku      string
	capacity int64
	scarce   bool // sells out during the run, so bookings of it abort
}

// services are the travel services of a chaos run and their inventories:
// one plentiful SKU and one scarce SKU each.
var services = []struct {
	name  string
	stock []stock
}{
	{"flights", []stock{{"FL100", 1_000_000, false}, {"FL300", 40, true}}},
	{"hotels", []stock{{"H-PARIS", 1_000_000, false}, {"H-OSLO", 30, true}}},
	{"cars", []stock{{"C-ECON", 1_000_000, false}, {"C-VAN", 20, true}}},
}

// capacityOf is the capacity a run gives st: ScarceCapacity, when set,
// for a scarce SKU.
func (o Options) capacityOf(st stock) int64 {
	if st.scarce && o.ScarceCapacity > 0 {
		return o.ScarceCapacity
	}
	return st.capacity
}

func inventoryFlag(opts Options, st []stock) string {
	parts := make([]string, len(st))
	for i, s := range st {
		parts[i] = fmt.Sprintf("%s=%d", s.sku, opts.capacityOf(s))
	}
	return strings.Join(parts, ",")
}

// cluster is the coordinator, the services and the fault proxies between
// them.
type cluster struct {
	opts       Options
	coord      *process
	services   []*process                   // in the order of the services table
	proxies    map[string]*faultproxy.Proxy // by link name, see links
	links      []string                     // "coordinator->flights", ..., "services->coordinator"
	coordURL   string
	serviceURL map[string]string
	walDir     string // the coordinator's log directory
	http       *http.Client
	exits      chan exit
	closeOnce  sync.Once
}

func newCluster(opts Options) (c *cluster, err error) {
	c = &cluster{
		opts:       opts,
		proxies:    map[string]*faultproxy.Proxy{},
		serviceURL: map[string]string{},
		exits:      make(chan exit, 64),
		http: &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 10 * time.Second},
		},
	}
	defer func() {
		if err != nil {
			c.close()
		}
	}()
	if err := os.MkdirAll(filepath.Join(opts.Dir, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("run directory: %w", err)
	}
	coordAddr, err := freePort()
	if err != nil {
		return nil, err
	}
	c.coordURL = "http://" + coordAddr
	// The services reach the coordinator (outcome queries in doubt) through
	// a proxy too: the coordinator advertises it in every PREPARE and the
	// services are configured with it.
	back, err := faultproxy.New(faultproxy.Options{Upstream: c.coordURL, Seed: opts.Seed})
	if err != nil {
		return nil, fmt.Errorf("proxy for the coordinator: %w", err)
	}
	c.proxies[backLink] = back
	// Small log segments, so that compaction deletes some within a short run.
	coordArgs := []string{"coordinator", "--listen", coordAddr, "--data", filepath.Join(opts.Dir, "coordinator"),
		"--advertise", back.URL(), "--segment-size", "65536"}
	c.walDir = filepath.Join(opts.Dir, "coordinator", "wal")
	for i, s := range services {
		addr, err := freePort()
		if err != nil {
			return nil, err
		}
		c.serviceURL[s.name] = "http://" + addr
		px, err := faultproxy.New(faultproxy.Options{Upstream: "http://" + addr, Seed: opts.Seed + uint64(i) + 1})
		if err != nil {
			return nil, fmt.Errorf("proxy for %s: %w", s.name, err)
		}
		c.proxies[linkTo(s.name)] = px
		c.links = append(c.links, linkTo(s.name))
		coordArgs = append(coordArgs, "--participant", s.name+"="+px.URL())
		args := []string{"participant", "--service", s.name, "--listen", addr,
			"--data", filepath.Join(opts.Dir, s.name), "--coordinator", back.URL(),
			"--inventory", inventoryFlag(opts, s.stock)}
		c.services = append(c.services, &process{
			name: s.name, role: "participant", binary: opts.Binary,
			args:    append(args, opts.ParticipantArgs...),
			logPath: filepath.Join(opts.Dir, "logs", s.name+".log"),
			health:  "http://" + addr + "/v1/inventory",
		})
	}
	c.links = append(c.links, backLink)
	c.coord = &process{
		name: "coordinator", role: "coordinator", binary: opts.Binary,
		args:    append(coordArgs, opts.CoordinatorArgs...),
		logPath: filepath.Join(opts.Dir, "logs", "coordinator.log"),
		health:  c.coordURL + "/healthz",
	}
	return c, nil
}

// backLink names the path from the services to the coordinator.
const backLink = "services->coordinator"

// linkTo names the path from the coordinator to a service.
func linkTo(service string) string { return "coordinator->" + service }

// processes lists every managed process, coordinator first.
func (c *cluster) processes() []*process {
	return append([]*process{c.coord}, c.services...)
}

// startAll starts the services, then the coordinator, each disarmed, and
// waits until every one answers.
func (c *cluster) startAll(ctx context.Context) error {
	for _, p := range append(c.services, c.coord) {
		if err := c.launch(ctx, p, nil, 0); err != nil {
			return err
		}
	}
	return nil
}

// launch starts p with the given failpoints and waits until it answers. A
// process armed with a failpoint may die before answering; that is no error.
func (c *cluster) launch(ctx context.Context, p *process, armed []failpoint.Term, seed uint64) error {
	if err := p.start(armed, seed, c.exits); err != nil {
		return err
	}
	err := p.waitHealthy(ctx, c.get, time.Now().Add(c.opts.StartTimeout))
	if err != nil && len(armed) > 0 && !p.running() {
		return nil
	}
	return err
}

// get fetches url and reports an error unless it answers 200.
func (c *cluster) get(url string) error {
	resp, err := c.http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// healNetwork stops every proxy fault.
func (c *cluster) healNetwork() {
	for _, px := range c.proxies {
		px.Heal()
	}
}

// close kills every process (SIGKILL to its group) and closes the proxies.
func (c *cluster) close() {
	c.closeOnce.Do(func() {
		for _, p := range c.processes() {
			if p != nil {
				p.stop(syscall.SIGKILL, 0)
			}
		}
		for _, px := range c.proxies {
			px.Close()
		}
		c.http.CloseIdleConnections()
	})
}
