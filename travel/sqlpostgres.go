package travel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/pgxa"
)

func init() {
	RegisterStore("postgres", openPostgresStore)
	RegisterStore("postgresql", openPostgresStore)
}

// pgStoreMaxConns is the connection pool size unless the URL sets
// pool_max_conns.
const pgStoreMaxConns = 16

// OpenPostgresStore opens (creating its tables on first start) the store of
// cfg.Service in the PostgreSQL database cfg.URL names
// (postgres://user:password@host:port/database?search_path=schema...). The
// server must allow prepared transactions (max_prepared_transactions > 0).
func OpenPostgresStore(ctx context.Context, cfg StoreConfig) (*SQLStore, error) {
	prefix, err := sqlTablePrefix(cfg.Service)
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("%w: store URL %s: %v", ErrBadOptions, redactURL(cfg.URL), redactErr(cfg.URL, err))
	}
	if _, set := pc.ConnConfig.RuntimeParams["pool_max_conns"]; !set && pc.MaxConns < pgStoreMaxConns {
		pc.MaxConns = pgStoreMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", redactURL(cfg.URL), redactErr(cfg.URL, err))
	}
	b := &pgBackend{
		pool:  pool,
		inv:   pgx.Identifier{prefix + "_inventory"}.Sanitize(),
		resv:  pgx.Identifier{prefix + "_reservations"}.Sanitize(),
		index: pgx.Identifier{prefix + "_reservations_sku_state"}.Sanitize(),
	}
	if err := b.open(ctx, cfg); err != nil {
		pool.Close()
		return nil, err
	}
	return newSQLStore(cfg.Service, b), nil
}

func openPostgresStore(ctx context.Context, cfg StoreConfig) (Store, error) {
	return OpenPostgresStore(ctx, cfg)
}

type pgBackend struct {
	pool  *pgxpool.Pool
	xa    *pgxa.Resource
	inv   string // quoted table names
	resv  string
	index string
}

func (b *pgBackend) open(ctx context.Context, cfg StoreConfig) error {
	// Prepared transactions keep locks on the tables, which CREATE ... IF
	// NOT EXISTS would wait for: create only what is missing, and never wait
	// long for a lock.
	if err := pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = 10000; SELECT pg_advisory_xact_lock(7306157002)"); err != nil {
			return err
		}
		var missing bool
		if err := tx.QueryRow(ctx, "SELECT to_regclass($1) IS NULL OR to_regclass($2) IS NULL OR to_regclass($3) IS NULL",
			b.inv, b.resv, b.index).Scan(&missing); err != nil {
			return err
		}
		if missing {
			for _, q := range []string{
				`CREATE TABLE IF NOT EXISTS ` + b.inv + ` (
					sku       text PRIMARY KEY,
					pos       int NOT NULL,
					capacity  bigint NOT NULL CHECK (capacity >= 0),
					available bigint NOT NULL CHECK (available >= 0),
					confirmed_base bigint NOT NULL DEFAULT 0)`,
				`CREATE TABLE IF NOT EXISTS ` + b.resv + ` (
					txid     text PRIMARY KEY,
					seq      bigserial NOT NULL,
					sku      text NOT NULL,
					quantity bigint NOT NULL CHECK (quantity > 0),
					state    text NOT NULL CHECK (state IN ('prepared', 'committed', 'aborted')))`,
				`CREATE INDEX IF NOT EXISTS ` + b.index + ` ON ` + b.resv + ` (sku, state)`,
			} {
				if _, err := tx.Exec(ctx, q); err != nil {
					return err
				}
			}
		}
		rows, err := tx.Query(ctx, "SELECT sku, capacity FROM "+b.inv+" ORDER BY pos")
		if err != nil {
			return err
		}
		stored, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stock, error) {
			var s Stock
			err := r.Scan(&s.SKU, &s.Capacity)
			return s, err
		})
		if err != nil {
			return err
		}
		if len(stored) > 0 {
			return cfg.CheckStock(stored)
		}
		stock, _, err := cfg.stock()
		if err != nil {
			return err
		}
		for i, s := range stock {
			if _, err := tx.Exec(ctx, "INSERT INTO "+b.inv+" (sku, pos, capacity, available) VALUES ($1, $2, $3, $3)", s.SKU, i, s.Capacity); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("create tables: %w", err)
	}
	xa, err := pgxa.New(ctx, pgxa.Options{Pool: b.pool, Name: cfg.Service, Work: b.work, Remember: cfg.Remember, Now: cfg.Now})
	if err != nil {
		return err
	}
	b.xa = xa
	return releaseOrphans(ctx, b)
}

func (b *pgBackend) res() participant.OnePhaseResource { return b.xa }

func (b *pgBackend) status(ctx context.Context, id concord.TxID) (xaStatus, error) {
	st, err := b.xa.Status(ctx, id)
	return xaStatus{state: string(st.State), reason: st.Reason}, err
}

// work is the prepared (second) transaction: it turns id's held
// reservation into a committed one, visible once COMMIT PREPARED runs. In
// one phase it holds and confirms at once.
func (b *pgBackend) work(ctx context.Context, tx pgx.Tx, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	m := workModeOf(ctx)
	if m.refuse != "" {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: m.refuse}, nil
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: err.Error()}, nil
	}
	if m.onePhase {
		ok, reason, err := b.take(ctx, tx, req)
		if err != nil || !ok {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, err
		}
		_, err = tx.Exec(ctx, "INSERT INTO "+b.resv+" (txid, sku, quantity, state) VALUES ($1, $2, $3, 'committed')", string(id), req.SKU, req.Quantity)
		return participant.PrepareResult{Vote: concord.VoteYes}, err
	}
	tag, err := tx.Exec(ctx, "UPDATE "+b.resv+" SET state = 'committed' WHERE txid = $1 AND state = 'prepared'", string(id))
	if err != nil {
		return participant.PrepareResult{}, err
	}
	if tag.RowsAffected() != 1 {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "no hold for this transaction"}, nil
	}
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

// take lowers req.SKU's available count by req.Quantity, or says why not.
func (b *pgBackend) take(ctx context.Context, tx pgx.Tx, req Request) (bool, string, error) {
	tag, err := tx.Exec(ctx, "UPDATE "+b.inv+" SET available = available - $2 WHERE sku = $1 AND available >= $2", req.SKU, req.Quantity)
	if err != nil || tag.RowsAffected() == 1 {
		return err == nil, "", err
	}
	var avail int64
	err = tx.QueryRow(ctx, "SELECT available FROM "+b.inv+" WHERE sku = $1", req.SKU).Scan(&avail)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, reserveReason(req, false, 0), nil
	}
	if err != nil {
		return false, "", err
	}
	return false, reserveReason(req, true, avail), nil
}

// asyncCommit begins a transaction whose commit does not wait for its WAL
// flush. The hold and the release may use it: a hold is flushed, at the
// latest, with the PREPARE TRANSACTION that follows it in the WAL (before
// which no vote is given), and a lost release leaves a hold that no
// prepared transaction backs, which opening the store releases.
var asyncCommit = pgx.TxOptions{BeginQuery: "BEGIN; SET LOCAL synchronous_commit = off"}

func (b *pgBackend) hold(ctx context.Context, id concord.TxID, req Request) (ok bool, reason string, err error) {
	err = pgx.BeginTxFunc(ctx, b.pool, asyncCommit, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "INSERT INTO "+b.resv+" (txid, sku, quantity, state) VALUES ($1, $2, $3, 'prepared') ON CONFLICT (txid) DO NOTHING",
			string(id), req.SKU, req.Quantity)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 { // held before (a crash came between hold and prepare) or decided
			var state string
			if err := tx.QueryRow(ctx, "SELECT state FROM "+b.resv+" WHERE txid = $1", string(id)).Scan(&state); err != nil {
				return err
			}
			ok, reason = state == string(StatePrepared), "reservation is already "+state
			return nil
		}
		ok, reason, err = b.take(ctx, tx, req)
		if err == nil && !ok {
			return errRollback
		}
		return err
	})
	if errors.Is(err, errRollback) {
		err = nil
	}
	return ok, reason, err
}

// errRollback makes a BeginFunc roll back without an error to report.
var errRollback = errors.New("roll back")

func (b *pgBackend) release(ctx context.Context, id concord.TxID) error {
	return pgx.BeginTxFunc(ctx, b.pool, asyncCommit, func(tx pgx.Tx) error {
		var sku string
		var q int64
		err := tx.QueryRow(ctx, "UPDATE "+b.resv+" SET state = 'aborted' WHERE txid = $1 AND state = 'prepared' RETURNING sku, quantity",
			string(id)).Scan(&sku, &q)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE "+b.inv+" SET available = available + $2 WHERE sku = $1", sku, q)
		return err
	})
}

func (b *pgBackend) items(ctx context.Context) ([]Item, error) {
	rows, err := b.pool.Query(ctx, `SELECT i.sku, i.capacity, i.available,
		coalesce(sum(r.quantity) FILTER (WHERE r.state = 'prepared'), 0),
		i.confirmed_base + coalesce(sum(r.quantity) FILTER (WHERE r.state = 'committed'), 0)
		FROM `+b.inv+` i LEFT JOIN `+b.resv+` r ON r.sku = i.sku
		GROUP BY i.sku, i.pos, i.capacity, i.available, i.confirmed_base ORDER BY i.pos`)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Item, error) {
		var it Item
		err := r.Scan(&it.SKU, &it.Capacity, &it.Available, &it.Held, &it.Confirmed)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return items, nil
}

func scanPGReservation(r pgx.CollectableRow) (Reservation, error) {
	var res Reservation
	var id, state string
	err := r.Scan(&id, &res.SKU, &res.Quantity, &state)
	res.ID, res.State = concord.TxID(id), State(state)
	return res, err
}

func (b *pgBackend) reservation(ctx context.Context, id concord.TxID) (Reservation, bool, error) {
	rows, err := b.pool.Query(ctx, "SELECT txid, sku, quantity, state FROM "+b.resv+" WHERE txid = $1", string(id))
	if err != nil {
		return Reservation{}, false, fmt.Errorf("read reservation %s: %w", id, err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanPGReservation)
	if errors.Is(err, pgx.ErrNoRows) {
		return Reservation{}, false, nil
	}
	if err != nil {
		return Reservation{}, false, fmt.Errorf("read reservation %s: %w", id, err)
	}
	return r, true, nil
}

func (b *pgBackend) reservations(ctx context.Context, s State) ([]Reservation, error) {
	rows, err := b.pool.Query(ctx, "SELECT txid, sku, quantity, state FROM "+b.resv+" WHERE $1 = '' OR state = $1 ORDER BY txid COLLATE \"C\"", string(s))
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanPGReservation)
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return list, nil
}

func (b *pgBackend) decidedCount(ctx context.Context) (int64, error) {
	var n int64
	err := b.pool.QueryRow(ctx, "SELECT count(*) FROM "+b.resv+" WHERE state IN ('committed', 'aborted')").Scan(&n)
	return n, err
}

func (b *pgBackend) oldestDecided(ctx context.Context, limit int64) ([]Reservation, error) {
	rows, err := b.pool.Query(ctx, "SELECT txid, sku, quantity, state FROM "+b.resv+
		" WHERE state IN ('committed', 'aborted') ORDER BY seq LIMIT $1", limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanPGReservation)
}

func (b *pgBackend) forget(ctx context.Context, old []Reservation, confirmed map[string]int64) error {
	ids := make([]string, len(old))
	for i, r := range old {
		ids[i] = string(r.ID)
	}
	return pgx.BeginFunc(ctx, b.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM "+b.resv+" WHERE txid = ANY($1) AND state IN ('committed', 'aborted')", ids); err != nil {
			return err
		}
		for sku, q := range confirmed {
			if _, err := tx.Exec(ctx, "UPDATE "+b.inv+" SET confirmed_base = confirmed_base + $2 WHERE sku = $1", sku, q); err != nil {
				return err
			}
		}
		return nil
	})
}

func (b *pgBackend) close() error {
	b.pool.Close()
	return nil
}
