package pgxa

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
)

// fakeRow answers Scan with a fixed max_prepared_transactions.
type fakeRow struct{ n int }

func (r fakeRow) Scan(dest ...any) error {
	*(dest[0].(*int)) = r.n
	return nil
}

type fakeQuerier struct{ n int }

func (q fakeQuerier) QueryRow(context.Context, string, ...any) pgx.Row { return fakeRow(q) }

func TestCheckPreparedRefusesZero(t *testing.T) {
	err := checkPrepared(context.Background(), fakeQuerier{0})
	if !errors.Is(err, ErrPreparedDisabled) {
		t.Fatalf("max_prepared_transactions=0: err = %v, want ErrPreparedDisabled", err)
	}
	if err := checkPrepared(context.Background(), fakeQuerier{64}); err != nil {
		t.Fatalf("max_prepared_transactions=64: %v", err)
	}
}

func TestQuoteLiteral(t *testing.T) {
	if got := quoteLiteral("a'b"); got != "'a''b'" {
		t.Fatalf("quoteLiteral = %s", got)
	}
}
