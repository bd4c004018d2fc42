package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"
)

// profilePhase waits a quarter of the phase, then takes CPU profiles of
// every started process and of the bench itself over half of it, into
// dir/<label>-<process>.pprof. It returns when they are written or ctx
// ends; errors go to progress.
func profilePhase(ctx context.Context, c *cluster, dir, label string, d time.Duration, progress io.Writer) {
	if d < 2*time.Second {
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		fmt.Fprintf(progress, "  profile: %v\n", err)
		return
	}
	select {
	case <-time.After(d / 4):
	case <-ctx.Done():
		return
	}
	secs := max(1, int(d/2/time.Second))
	var wg sync.WaitGroup
	for name, addr := range c.pprof {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", addr, secs)
			if err := fetchTo(ctx, url, filepath.Join(dir, label+"-"+name+".pprof")); err != nil {
				fmt.Fprintf(progress, "  profile of %s: %v\n", name, err)
			}
		}()
	}
	f, err := os.Create(filepath.Join(dir, label+"-bench.pprof"))
	if err == nil {
		if err = pprof.StartCPUProfile(f); err == nil {
			select {
			case <-time.After(time.Duration(secs) * time.Second):
			case <-ctx.Done():
			}
			pprof.StopCPUProfile()
		}
		f.Close()
	}
	if err != nil {
		fmt.Fprintf(progress, "  profile of the bench: %v\n", err)
	}
	wg.Wait()
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
