package participant_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
	"github.com/concordtx/concord/wire"
)

// syncBuffer is a bytes.Buffer safe for the logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The acknowledgement of a COMMIT with no record past its deadline plus
// the clock skew allowance is logged at INFO, naming the transaction.
func TestForgottenCommitLoggedAtInfo(t *testing.T) {
	clock := participanttest.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	var logs syncBuffer
	retention := participant.Retention{ClockSkew: 10 * time.Second}
	srv, _ := startServer(t, participant.Options{Resource: participanttest.NewMemResource(), Clock: clock, Retention: retention,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	deadline := clock.Now().Add(-11 * time.Second)
	dec, err := srv.CommitRequest(context.Background(), wire.DecisionRequest{IDs: []concord.TxID{"gone"}, DeadlinesMS: []int64{deadline.UnixMilli()}})
	if err != nil || len(dec.Forgotten) != 1 {
		t.Fatalf("commit = %+v, %v; want acknowledged as forgotten", dec, err)
	}
	if out := logs.String(); !strings.Contains(out, "level=INFO") || !strings.Contains(out, "tx=gone") || !strings.Contains(out, "forgotten") {
		t.Fatalf("log %q; want an INFO line naming tx gone as forgotten", out)
	}
}
