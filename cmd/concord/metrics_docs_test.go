package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/internal/testutil"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
	"github.com/concordtx/concord/wire"
)

// servedMetrics gathers the registries of a coordinator and of a travel
// service on the file store, after enough traffic that every labelled
// family has a series: name to type. The Go runtime's and the process's
// collectors (go_*, process_*) are left out.
func servedMetrics(t *testing.T) map[string]dto.MetricType {
	t.Helper()
	flights := testutil.NewParticipant(t, "flights")
	c, err := coordinator.New(coordinator.Options{Dir: "/c", FS: memfs.New(), CompactInterval: time.Hour,
		Participants: map[string]string{"flights": flights.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ln); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Submit(context.Background(), wire.SubmitRequest{ID: "m", Branches: []wire.Branch{{Participant: "flights"}}}); err != nil {
		t.Fatal(err)
	}
	c.RetryNow("nobody") // an operator action, refused: the actions family gets a series
	store, err := travel.OpenStore(context.Background(), travel.StoreConfig{Service: travel.Flights, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := travel.New(travel.Options{Name: travel.Flights, Store: store, Server: participant.Options{Coordinator: c.URL()}})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	defer svc.Close()
	names := map[string]dto.MetricType{}
	for _, g := range []interface {
		Gather() ([]*dto.MetricFamily, error)
	}{c.Registry(), svc.Server().Registry()} {
		fams, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fams {
			if n := f.GetName(); !strings.HasPrefix(n, "go_") && !strings.HasPrefix(n, "process_") {
				names[n] = f.GetType()
			}
		}
	}
	if len(names) < 30 {
		t.Fatalf("only %d metrics gathered: %v", len(names), names)
	}
	return names
}

// mentions reports whether text names metric as a whole word.
func mentions(text, metric string) bool {
	return regexp.MustCompile(`(^|[^a-z_])` + regexp.QuoteMeta(metric) + `([^a-z_]|$)`).MatchString(text)
}

// Every metric the servers export is documented in docs/operations.md.
func TestEveryMetricDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var missing []string
	for n := range servedMetrics(t) {
		if !mentions(string(doc), n) {
			missing = append(missing, n)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("metrics served but not documented in docs/operations.md:\n%s", strings.Join(missing, "\n"))
	}
}

// The Grafana dashboard's queries name only metrics the servers export (a
// histogram's _bucket, _sum and _count series included), and it has some.
func TestGrafanaDashboardNamesServedMetrics(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana/concord.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("docs/grafana/concord.json: %v", err)
	}
	served := servedMetrics(t)
	series := map[string]bool{}
	for n, typ := range served {
		series[n] = true
		if typ == dto.MetricType_HISTOGRAM || typ == dto.MetricType_SUMMARY {
			series[n+"_sum"], series[n+"_count"] = true, true
		}
		if typ == dto.MetricType_HISTOGRAM {
			series[n+"_bucket"] = true
		}
	}
	name := regexp.MustCompile(`\b(concord|go|process)_[a-z0-9_]+`)
	queries := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if tg.Expr == "" {
				continue
			}
			queries++
			found := name.FindAllString(tg.Expr, -1)
			if len(found) == 0 {
				t.Errorf("panel %q: query %q names no metric", p.Title, tg.Expr)
			}
			for _, m := range found {
				if strings.HasPrefix(m, "concord_") && !series[m] {
					t.Errorf("panel %q: query %q names %s, which no server exports", p.Title, tg.Expr, m)
				}
			}
		}
	}
	if queries < 10 {
		t.Errorf("the dashboard has %d queries; want one panel per thing worth watching", queries)
	}
}
