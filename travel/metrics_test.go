package travel

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/wire"
)

// A service on the file store serves its protocol counters and its log's
// fsyncs at GET /metrics.
func TestServiceMetrics(t *testing.T) {
	st, err := OpenStore(t.Context(), StoreConfig{Service: Hotels, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(Options{Name: Hotels, Store: st, Server: participant.Options{Coordinator: "http://127.0.0.1:1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(svc.Handler())
	defer srv.Close()
	pc := &wire.ParticipantClient{BaseURL: srv.URL}
	items, _ := st.Items(t.Context())
	req := wire.PrepareRequest{Transactions: []wire.PrepareTx{{ID: "m1", Payload: Request{SKU: items[0].SKU, Quantity: 1}.Payload()}}}
	if resp, err := pc.Prepare(t.Context(), req); err != nil || resp.Votes[0].Vote != concord.VoteYes {
		t.Fatalf("prepare: %+v %v", resp, err)
	}
	if _, err := pc.Commit(t.Context(), []concord.TxID{"m1"}); err != nil {
		t.Fatal(err)
	}
	code, body := get(t, srv.URL+wire.PathMetrics)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d", code)
	}
	for _, want := range []string{`concord_participant_transactions_total{kind="commit"} 1`, "concord_wal_segments "} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	m := regexp.MustCompile(`(?m)^concord_wal_fsync_seconds_count (\d+)$`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no fsync count in\n%s", body)
	}
	if n, _ := strconv.Atoi(m[1]); n < 1 {
		t.Errorf("fsync count %d: the prepare and the commit are synced", n)
	}
}
