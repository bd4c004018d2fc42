package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wire"
)

// errNotFound is a 404 from a public API.
var errNotFound = errors.New("not found")

// getJSON GETs url into v; a 404 is errNotFound.
func (c *cluster) getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return errNotFound
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, lastLines(string(b), 1))
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s: %w", url, err)
	}
	return nil
}

// reservationList is the shape of GET /v1/reservations?state=...
type reservationList struct {
	Reservations []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"reservations"`
}

// leftovers asks the coordinator for pending transactions and every service
// for prepared reservations.
func (c *cluster) leftovers(ctx context.Context) (pending []string, prepared map[string][]string, err error) {
	var list wire.TxList
	if err := c.getJSON(ctx, c.coordURL+wire.PathTransactions+"?state=pending", &list); err != nil {
		return nil, nil, fmt.Errorf("coordinator: %w", err)
	}
	for _, t := range list.Transactions {
		pending = append(pending, string(t.ID))
	}
	prepared = map[string][]string{}
	for _, s := range services {
		var rl reservationList
		if err := c.getJSON(ctx, c.serviceURL[s.name]+"/v1/reservations?state=prepared", &rl); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", s.name, err)
		}
		for _, r := range rl.Reservations {
			prepared[s.name] = append(prepared[s.name], r.ID)
		}
	}
	return pending, prepared, nil
}

// settle polls until the coordinator has nothing pending and no service
// holds anything prepared, or the deadline passes.
func (c *cluster) settle(ctx context.Context, deadline time.Time) (time.Duration, error) {
	start := time.Now()
	for {
		pending, prepared, err := c.leftovers(ctx)
		if err == nil && len(pending) == 0 && len(prepared) == 0 {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return time.Since(start), err
			}
			return time.Since(start), fmt.Errorf("%d pending at the coordinator, prepared at services: %v", len(pending), countEach(prepared))
		}
		if !sleep(ctx.Done(), 200*time.Millisecond) {
			return time.Since(start), ctx.Err()
		}
	}
}

func countEach(m map[string][]string) map[string]int {
	out := map[string]int{}
	for k, v := range m {
		out[k] = len(v)
	}
	return out
}

// observe reads, through the public APIs, every transaction's state at the
// coordinator and at each service it touched, and every inventory.
func (c *cluster) observe(ctx context.Context, txs []*txRecord) observation {
	o := observation{
		txs:          txs,
		coordinator:  map[string]string{},
		reservations: map[string]map[string]string{},
		inventories:  map[string][]item{},
		capacity:     map[string]map[string]int64{},
		retention:    travel.DecidedRetention,
	}
	var mu sync.Mutex
	unreachable := func(what string, err error) {
		mu.Lock()
		defer mu.Unlock()
		if len(o.unreachable) < 20 {
			o.unreachable = append(o.unreachable, fmt.Sprintf("%s: %v", what, err))
		}
	}
	for _, s := range services {
		o.reservations[s.name] = map[string]string{}
		o.capacity[s.name] = map[string]int64{}
		for _, st := range s.stock {
			o.capacity[s.name][st.sku] = c.opts.capacityOf(st)
		}
		var inv struct {
			Items []item `json:"items"`
		}
		if err := c.getJSON(ctx, c.serviceURL[s.name]+"/v1/inventory", &inv); err != nil {
			unreachable(s.name+" inventory", err)
		}
		o.inventories[s.name] = inv.Items
	}
	work := make(chan *txRecord)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for tx := range work {
				var st wire.TxStatus
				switch err := c.getJSON(ctx, c.coordURL+wire.TransactionPath(tx.ID), &st); {
				case err == nil:
					mu.Lock()
					o.coordinator[string(tx.ID)] = st.State
					mu.Unlock()
				case !errors.Is(err, errNotFound):
					unreachable("coordinator transaction "+string(tx.ID), err)
				}
				for _, b := range tx.Branches {
					var r struct {
						State string `json:"state"`
					}
					switch err := c.getJSON(ctx, c.serviceURL[b.Service]+"/v1/reservations/"+string(tx.ID), &r); {
					case err == nil:
						mu.Lock()
						o.reservations[b.Service][string(tx.ID)] = r.State
						mu.Unlock()
					case !errors.Is(err, errNotFound):
						unreachable(b.Service+" reservation "+string(tx.ID), err)
					}
				}
			}
		}()
	}
	for _, tx := range txs {
		work <- tx
	}
	close(work)
	wg.Wait()
	pending, prepared, err := c.leftovers(ctx)
	if err != nil {
		unreachable("leftovers", err)
	}
	o.stillPending, o.stillPrepared = pending, prepared
	return o
}

// logUsage is the size of a log directory: its segment files and their
// bytes.
type logUsage struct {
	Segments int      `json:"segments"`
	Bytes    int64    `json:"bytes"`
	Names    []string `json:"names,omitempty"`
}

// segmentUsage measures the wal segments (*.wal) in dir.
func segmentUsage(dir string) logUsage {
	var u logUsage
	entries, err := os.ReadDir(dir)
	if err != nil {
		return u
	}
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".wal") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		u.Segments++
		u.Bytes += info.Size()
		u.Names = append(u.Names, e.Name())
	}
	sort.Strings(u.Names)
	return u
}
