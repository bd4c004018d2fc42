package bench

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/concordtx/concord/internal/procs"
)

// maxCapacity is the largest stock of one SKU a travel service accepts.
const maxCapacity = 1_000_000

// skuName is the i-th SKU a started service offers.
func skuName(service string, i int) string {
	return fmt.Sprintf("%s-%d", strings.ToUpper(service[:1]), i)
}

// cluster is the system under test: its addresses and, when the bench
// started it, its processes.
type cluster struct {
	coordURL string
	services map[string]string // service name to base URL; may be partial
	procs    []*procs.Process  // started processes, coordinator last
	pprof    map[string]string // process name to its pprof address, when profiling
}

// startCluster starts the three travel services and then the coordinator
// as processes of opts.Binary on loopback, with fresh data directories
// under opts.Dir, and waits until each answers.
func startCluster(ctx context.Context, opts Options) (c *cluster, err error) {
	c = &cluster{services: map[string]string{}, pprof: map[string]string{}}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	logs := filepath.Join(opts.Dir, "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, fmt.Errorf("bench directory: %w", err)
	}
	coordAddr, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	c.coordURL = "http://" + coordAddr
	hc := &http.Client{Timeout: 2 * time.Second}
	coordArgs := []string{"coordinator", "--listen", coordAddr, "--data", freshDir(opts.Dir, "coordinator")}
	for _, name := range Services {
		addr, err := procs.FreeAddr()
		if err != nil {
			return nil, err
		}
		url := "http://" + addr
		c.services[name] = url
		coordArgs = append(coordArgs, "--participant", name+"="+url)
		inv := make([]string, opts.SKUs)
		for i := range inv {
			inv[i] = fmt.Sprintf("%s=%d", skuName(name, i), maxCapacity)
		}
		args := []string{"participant", "--service", name, "--listen", addr,
			"--data", freshDir(opts.Dir, name), "--coordinator", c.coordURL,
			"--inventory", strings.Join(inv, ",")}
		env, err := c.profileEnv(opts, name)
		if err != nil {
			return nil, err
		}
		if opts.ServiceProcs > 0 {
			env = append(env, fmt.Sprintf("GOMAXPROCS=%d", opts.ServiceProcs))
		}
		p, err := procs.Start(procs.Spec{Name: name, Binary: opts.Binary, Env: env,
			Args: append(args, opts.ProcessArgs["participant"]...), LogPath: filepath.Join(logs, name+".log"),
			Health: url + "/healthz"})
		if err != nil {
			return nil, err
		}
		c.procs = append(c.procs, p)
	}
	env, err := c.profileEnv(opts, coordinatorName)
	if err != nil {
		return nil, err
	}
	p, err := procs.Start(procs.Spec{Name: coordinatorName, Binary: opts.Binary, Env: env,
		Args: append(coordArgs, opts.ProcessArgs["coordinator"]...), LogPath: filepath.Join(logs, "coordinator.log"),
		Health: c.coordURL + "/healthz"})
	if err != nil {
		return nil, err
	}
	c.procs = append(c.procs, p)
	for _, p := range c.procs {
		if err := p.WaitHealthy(ctx, hc, opts.StartTimeout); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// pprofEnvVar names the address a concord process serves net/http/pprof on.
const pprofEnvVar = "CONCORD_PPROF"

// profileEnv gives process name a pprof address when profiling.
func (c *cluster) profileEnv(opts Options, name string) ([]string, error) {
	if opts.ProfileDir == "" {
		return nil, nil
	}
	addr, err := procs.FreeAddr()
	if err != nil {
		return nil, err
	}
	c.pprof[name] = addr
	return []string{pprofEnvVar + "=" + addr}, nil
}

// freshDir returns a data directory under dir for name that does not exist
// yet, so that every run starts from empty logs.
func freshDir(dir, name string) string {
	p := filepath.Join(dir, name)
	for i := 2; ; i++ {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return p
		}
		p = filepath.Join(dir, fmt.Sprintf("%s.%d", name, i))
	}
}

// exited reports a started process that is no longer running.
func (c *cluster) exited() error {
	for _, p := range c.procs {
		if !p.Running() {
			return fmt.Errorf("%s exited during the run: %v", p.Name(), p.ExitState())
		}
	}
	return nil
}

// stop ends the started processes gracefully (SIGTERM, then SIGKILL after
// a grace period), the coordinator first.
func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop(syscall.SIGTERM, 10*time.Second)
	}
}
