package travel

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/internal/testutil/testdb"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
)

// sqlKind is one database a SQLStore runs on in tests.
type sqlKind struct {
	name string
	url  func(t *testing.T) string // a fresh namespace's store URL
}

var sqlKinds = []sqlKind{
	{"postgres", func(t *testing.T) string { return testdb.Postgres(t).URL }},
	{"mysql", func(t *testing.T) string { return mysqlURL(t, testdb.MySQL(t).URL) }},
}

// mysqlURL turns a go-sql-driver DSN into the mysql:// URL --store takes.
func mysqlURL(t testing.TB, dsn string) string {
	t.Helper()
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatal(err)
	}
	user := cfg.User
	if cfg.Passwd != "" {
		user += ":" + cfg.Passwd
	}
	return fmt.Sprintf("mysql://%s@%s/%s", user, cfg.Addr, cfg.DBName)
}

func forEachSQL(t *testing.T, f func(t *testing.T, url string)) {
	for _, k := range sqlKinds {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			f(t, k.url(t))
		})
	}
}

func openSQL(t *testing.T, url string, stock []Stock) *SQLStore {
	t.Helper()
	return openSQLAt(t, url, stock, participanttest.Env{})
}

// openSQLAt is openSQL with the clock and time rule of env.
func openSQLAt(t *testing.T, url string, stock []Stock, env participanttest.Env) *SQLStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := OpenStore(ctx, StoreConfig{Service: Flights, URL: url, Stock: stock, Now: env.Now, Remember: env.Retention})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st.(*SQLStore)
}

func sqlVote(t *testing.T, st Store, id concord.TxID, sku string, q int64, want concord.Vote) string {
	t.Helper()
	res, err := st.Prepare(context.Background(), id, Request{SKU: sku, Quantity: q}.Payload(), participant.PrepareInfo{})
	if err != nil {
		t.Fatalf("prepare %s: %v", id, err)
	}
	if res.Vote != want {
		t.Fatalf("prepare %s: vote %v (%s), want %v", id, res.Vote, res.Reason, want)
	}
	return res.Reason
}

func sqlItem(t *testing.T, st *SQLStore, sku string) Item {
	t.Helper()
	if err := st.Check(context.Background()); err != nil {
		t.Fatalf("conservation: %v", err)
	}
	items, err := st.Items(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.SKU == sku {
			return it
		}
	}
	t.Fatalf("no item %s in %v", sku, items)
	return Item{}
}

func wantItem(t *testing.T, st *SQLStore, want Item) {
	t.Helper()
	if got := sqlItem(t, st, want.SKU); got != want {
		t.Fatalf("item = %+v, want %+v", got, want)
	}
}

var testStock = []Stock{{"FL100", 10}, {"FL200", 3}}

func TestSQLStoreHoldConfirmRelease(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, testStock)
		sqlVote(t, st, "tx-1", "FL100", 2, concord.VoteYes)
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 8, Held: 2})
		if r, err := st.Reservation(ctx, "tx-1"); err != nil || r.State != StatePrepared || r.Quantity != 2 {
			t.Fatalf("reservation = %+v, %v", r, err)
		}
		sqlVote(t, st, "tx-1", "FL100", 2, concord.VoteYes) // repeated: held once
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 8, Held: 2})
		if err := st.Commit(ctx, "tx-1"); err != nil {
			t.Fatal(err)
		}
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 8, Confirmed: 2})
		if r, _ := st.Reservation(ctx, "tx-1"); r.State != StateCommitted {
			t.Fatalf("after commit: %+v", r)
		}

		sqlVote(t, st, "tx-2", "FL100", 3, concord.VoteYes)
		if err := st.Abort(ctx, "tx-2"); err != nil {
			t.Fatal(err)
		}
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 8, Confirmed: 2})
		if r, _ := st.Reservation(ctx, "tx-2"); r.State != StateAborted {
			t.Fatalf("after abort: %+v", r)
		}
		sqlVote(t, st, "tx-2", "FL100", 3, concord.VoteNo) // late prepare after abort
		if err := st.Commit(ctx, "tx-2"); !errors.Is(err, participant.ErrAlreadyDecided) {
			t.Fatalf("commit after abort = %v", err)
		}
		if err := st.Abort(ctx, "tx-1"); !errors.Is(err, participant.ErrAlreadyDecided) {
			t.Fatalf("abort after commit = %v", err)
		}
		if err := st.Commit(ctx, "tx-9"); !errors.Is(err, participant.ErrUnknownTx) {
			t.Fatalf("commit of unknown = %v", err)
		}

		// Refusals hold nothing and are remembered with their reason.
		for _, c := range []struct {
			id     concord.TxID
			sku    string
			q      int64
			reason error
		}{
			{"no-1", "FL999", 1, ErrUnknownSKU},
			{"no-2", "FL200", 4, ErrNotEnough},
			{"no-3", "FL200", 0, ErrBadQuantity},
		} {
			reason := sqlVote(t, st, c.id, c.sku, c.q, concord.VoteNo)
			if !strings.HasPrefix(reason, c.reason.Error()) {
				t.Errorf("%s: reason %q, want it to start with %q", c.id, reason, c.reason)
			}
			if r, err := st.Reservation(ctx, c.id); err != nil || r.State != StateAborted || r.Reason != reason {
				t.Errorf("%s: reservation = %+v, %v", c.id, r, err)
			}
		}
		wantItem(t, st, Item{SKU: "FL200", Capacity: 3, Available: 3})
		if _, err := st.Reservation(ctx, "never"); !errors.Is(err, ErrNoReservation) {
			t.Fatalf("reservation of unknown = %v", err)
		}
		list, err := st.Reservations(ctx, "")
		if err != nil || len(list) != 2 || list[0].ID != "tx-1" || list[1].ID != "tx-2" {
			t.Fatalf("reservations = %+v, %v", list, err)
		}
	})
}

// A participant crash: the holds and the prepared transactions stay in the
// database; a reopened store lists them with Recover and decides them.
func TestSQLStoreSurvivesCrash(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, testStock)
		sqlVote(t, st, "tx-1", "FL100", 2, concord.VoteYes)
		sqlVote(t, st, "tx-2", "FL100", 3, concord.VoteYes)
		st.Close() // drops every connection; decides nothing

		st2 := openSQL(t, url, nil)
		wantItem(t, st2, Item{SKU: "FL100", Capacity: 10, Available: 5, Held: 5})
		txs, err := st2.Recover(ctx)
		var ids []concord.TxID
		for _, tx := range txs {
			ids = append(ids, tx.ID)
		}
		slices.Sort(ids)
		if err != nil || fmt.Sprint(ids) != "[tx-1 tx-2]" {
			t.Fatalf("recover = %v, %v", ids, err)
		}
		if err := st2.Commit(ctx, "tx-1"); err != nil {
			t.Fatal(err)
		}
		if err := st2.Abort(ctx, "tx-2"); err != nil {
			t.Fatal(err)
		}
		wantItem(t, st2, Item{SKU: "FL100", Capacity: 10, Available: 8, Confirmed: 2})
	})
}

// A crash between the hold and its prepare leaves a hold no prepared
// transaction backs; reopening releases it, and the transaction's late
// prepare is refused (it never voted yes).
func TestSQLStoreReleasesOrphanedHold(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, testStock)
		ok, _, err := st.b.hold(ctx, "tx-1", Request{SKU: "FL100", Quantity: 4})
		if err != nil || !ok {
			t.Fatalf("hold = %v, %v", ok, err)
		}
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 6, Held: 4})
		st.Close()

		st2 := openSQL(t, url, nil)
		wantItem(t, st2, Item{SKU: "FL100", Capacity: 10, Available: 10})
		sqlVote(t, st2, "tx-1", "FL100", 4, concord.VoteNo)
		wantItem(t, st2, Item{SKU: "FL100", Capacity: 10, Available: 10})
	})
}

func TestSQLStoreOnePhase(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, testStock)
		out, _, err := st.CommitOnePhase(ctx, "one-1", Request{SKU: "FL200", Quantity: 2}.Payload(), participant.PrepareInfo{})
		if err != nil || out != concord.OutcomeCommitted {
			t.Fatalf("one-phase = %v, %v", out, err)
		}
		out, _, err = st.CommitOnePhase(ctx, "one-1", Request{SKU: "FL200", Quantity: 2}.Payload(), participant.PrepareInfo{})
		if err != nil || out != concord.OutcomeCommitted {
			t.Fatalf("repeated one-phase = %v, %v", out, err)
		}
		out, reason, err := st.CommitOnePhase(ctx, "one-2", Request{SKU: "FL200", Quantity: 2}.Payload(), participant.PrepareInfo{})
		if err != nil || out != concord.OutcomeAborted || !strings.HasPrefix(reason, ErrNotEnough.Error()) {
			t.Fatalf("one-phase beyond stock = %v %q %v", out, reason, err)
		}
		wantItem(t, st, Item{SKU: "FL200", Capacity: 3, Available: 1, Confirmed: 2})
	})
}

// Many bookings of one SKU at once: exactly the capacity is held, and every
// decision keeps available + held + confirmed = capacity.
func TestSQLStoreConcurrentSameSKU(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, []Stock{{"FL300", 8}})
		const n = 24
		votes := make([]concord.Vote, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := st.Prepare(ctx, concord.TxID(fmt.Sprintf("tx-%02d", i)), Request{SKU: "FL300", Quantity: 1}.Payload(), participant.PrepareInfo{})
				if err != nil {
					t.Error(err)
				}
				votes[i] = res.Vote
			}()
		}
		wg.Wait()
		var yes []int
		for i, v := range votes {
			if v == concord.VoteYes {
				yes = append(yes, i)
			}
		}
		if len(yes) != 8 {
			t.Fatalf("%d yes votes for 8 seats: %v", len(yes), votes)
		}
		wantItem(t, st, Item{SKU: "FL300", Capacity: 8, Held: 8})
		var committed int64
		for k, i := range yes {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := concord.TxID(fmt.Sprintf("tx-%02d", i))
				var err error
				if k%2 == 0 {
					err = st.Commit(ctx, id)
				} else {
					err = st.Abort(ctx, id)
				}
				if err != nil {
					t.Error(err)
				}
			}()
			if k%2 == 0 {
				committed++
			}
		}
		wg.Wait()
		wantItem(t, st, Item{SKU: "FL300", Capacity: 8, Available: 8 - committed, Confirmed: committed})
	})
}

func TestSQLStoreStockIsFixedAtCreation(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		openSQL(t, url, testStock).Close()
		_, err := OpenStore(context.Background(), StoreConfig{Service: Flights, URL: url, Stock: []Stock{{"FL100", 11}}})
		if !errors.Is(err, ErrStockMismatch) {
			t.Fatalf("reopen with other stock = %v, want ErrStockMismatch", err)
		}
		st := openSQL(t, url, nil) // without explicit stock: the stored one
		wantItem(t, st, Item{SKU: "FL200", Capacity: 3, Available: 3})
	})
}

func TestMySQLDSN(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"mysql://root@127.0.0.1/test", "root@tcp(127.0.0.1:3306)/test"},
		{"mysql://u:p%40ss@127.0.0.1:3307/shop?timeout=5s", "u:p@ss@tcp(127.0.0.1:3307)/shop?timeout=5s"},
	} {
		got, err := MySQLDSN(c.in)
		if err != nil || got != c.want {
			t.Errorf("MySQLDSN(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"mysql://root@127.0.0.1", "mysql://root@127.0.0.1/test?timeout=soon", "postgres://x/y", "mysql://[::1"} {
		if _, err := MySQLDSN(bad); !errors.Is(err, ErrBadOptions) {
			t.Errorf("MySQLDSN(%q) = %v, want ErrBadOptions", bad, err)
		}
	}
}

func TestOpenSQLStoreErrors(t *testing.T) {
	ctx := context.Background()
	if _, err := OpenStore(ctx, StoreConfig{Service: "Bad-Name", URL: "postgres://127.0.0.1/x"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad service name: %v", err)
	}
	if _, err := OpenStore(ctx, StoreConfig{Service: Flights, URL: "postgres://127.0.0.1:5432/test?sslmode=bogus"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("bad postgres URL: %v", err)
	}
	if _, err := OpenStore(ctx, StoreConfig{Service: Flights, URL: "mysql://root@127.0.0.1:3306"}); !errors.Is(err, ErrBadOptions) {
		t.Errorf("mysql URL without database: %v", err)
	}
}

// BenchmarkSQLStorePrepareCommit holds and commits one unit of one SKU per
// transaction, from 4×GOMAXPROCS goroutines, on each database.
func BenchmarkSQLStorePrepareCommit(b *testing.B) {
	for _, k := range []struct {
		name string
		url  func(b *testing.B) string
	}{
		{"postgres", func(b *testing.B) string { return testdb.Postgres(b).URL }},
		{"mysql", func(b *testing.B) string { return mysqlURL(b, testdb.MySQL(b).URL) }},
	} {
		b.Run(k.name, func(b *testing.B) {
			st, err := OpenStore(context.Background(), StoreConfig{Service: Flights, URL: k.url(b), Stock: []Stock{{"FL100", MaxCapacity}}})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { st.Close() })
			var n atomic.Int64
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					id := concord.TxID(fmt.Sprintf("b-%d", n.Add(1)))
					res, err := st.Prepare(ctx, id, Request{SKU: "FL100", Quantity: 1}.Payload(), participant.PrepareInfo{})
					if err != nil || res.Vote != concord.VoteYes {
						b.Errorf("%s: %+v %v", id, res, err)
						return
					}
					if err := st.Commit(ctx, id); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// Past the newest keep decided reservations, the oldest are forgotten: their
// rows go, their confirmed quantities stay in the SKU's count, prepared ones
// stay, and the decision table still answers repeats.
func TestSQLStoreForgetsOldDecisions(t *testing.T) {
	forEachSQL(t, func(t *testing.T, url string) {
		ctx := context.Background()
		st := openSQL(t, url, testStock)
		st.keep, st.forgetEvery, st.forgetBatch = 3, 1, 2
		sqlVote(t, st, "held", "FL100", 1, concord.VoteYes) // stays prepared throughout
		var confirmed int64
		for i := range 8 {
			id := concord.TxID(fmt.Sprintf("tx-%d", i))
			sqlVote(t, st, id, "FL100", 1, concord.VoteYes)
			if i%3 == 2 {
				if err := st.Abort(ctx, id); err != nil {
					t.Fatal(err)
				}
			} else {
				if err := st.Commit(ctx, id); err != nil {
					t.Fatal(err)
				}
				confirmed++
			}
			wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 10 - 1 - confirmed, Held: 1, Confirmed: confirmed})
		}
		all, err := st.Reservations(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		var ids []concord.TxID
		for _, r := range all {
			ids = append(ids, r.ID)
		}
		if fmt.Sprint(ids) != "[held tx-5 tx-6 tx-7]" {
			t.Fatalf("remembered %v, want the prepared one and the newest 3 decided", ids)
		}
		if _, err := st.Reservation(ctx, "tx-0"); !errors.Is(err, ErrNoReservation) {
			t.Fatalf("forgotten reservation: %v", err)
		}
		if err := st.Commit(ctx, "tx-0"); err != nil {
			t.Fatalf("repeated commit of a forgotten reservation: %v", err)
		}
		sqlVote(t, st, "tx-0", "FL100", 1, concord.VoteYes) // answered from the decision table: no new hold
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 10 - 1 - confirmed, Held: 1, Confirmed: confirmed})
		st.Close()
		st = openSQL(t, url, nil)
		wantItem(t, st, Item{SKU: "FL100", Capacity: 10, Available: 10 - 1 - confirmed, Held: 1, Confirmed: confirmed})
	})
}
