package participant_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// The server's /metrics counts what it was asked, per kind, with request
// latencies, batch sizes and resource call latencies; two servers in one
// process keep their own counts.
func TestMetrics(t *testing.T) {
	srv, pc := startServer(t, participant.Options{Resource: participanttest.NewMemResource()})
	other, _ := startServer(t, participant.Options{Resource: participanttest.NewMemResource()})
	ctx := context.Background()
	if _, err := pc.Prepare(ctx, wire.PrepareRequest{Transactions: []wire.PrepareTx{
		{ID: "a", Payload: participanttest.YesPayload(1)}, {ID: "b", Payload: participanttest.YesPayload(1)},
		{ID: "c", Payload: participanttest.NoPayload(1)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.Commit(ctx, []concord.TxID{"a"}); err != nil {
		t.Fatal(err)
	}
	scrape := func(s *participant.Server) string {
		hs := httptest.NewServer(s.MetricsHandler())
		defer hs.Close()
		resp, err := http.Get(hs.URL + wire.PathMetrics) // the handler serves any path; participants mount it there
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	text := scrape(srv)
	for _, want := range []string{
		`concord_participant_transactions_total{kind="prepare"} 3`,
		`concord_participant_transactions_total{kind="commit"} 1`,
		`concord_participant_requests_total{kind="prepare"} 1`,
		`concord_participant_in_doubt 1`, // b: prepared, never decided
		`concord_participant_request_seconds_count{kind="prepare"} 1`,
		`concord_participant_batch_size_sum{kind="prepare"} 3`,
		`concord_participant_resource_call_seconds_count{call="prepare"} 3`,
		`concord_participant_resource_call_seconds_count{call="commit"} 1`,
		`concord_participant_started 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if o := scrape(other); !strings.Contains(o, `concord_participant_transactions_total{kind="prepare"} 0`) {
		t.Errorf("the other server's metrics count this one's requests")
	}
}
