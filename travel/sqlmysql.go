package travel

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/mysqlxa"
)

func init() {
	RegisterStore("mysql", openMySQLStore)
}

// mysqlStoreMaxConns bounds the connections a MySQL store opens; each
// prepared transaction keeps one until it is decided.
const mysqlStoreMaxConns = 64

// MySQLDSN turns a mysql://user:password@host:port/database?param=value URL
// into a go-sql-driver DSN. The port defaults to 3306; the database is
// required; parameters are the driver's.
func MySQLDSN(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("%w: store URL %s: %v", ErrBadOptions, redactURL(rawURL), redactErr(rawURL, err))
	}
	if u.Scheme != "mysql" {
		return "", fmt.Errorf("%w: store URL %s: want mysql://", ErrBadOptions, redactURL(rawURL))
	}
	host := u.Host
	if host == "" {
		host = "127.0.0.1"
	}
	if u.Port() == "" {
		host += ":3306"
	}
	db := u.Path
	if len(db) > 0 && db[0] == '/' {
		db = db[1:]
	}
	if db == "" {
		return "", fmt.Errorf("%w: store URL %s names no database: want mysql://user@host:port/database", ErrBadOptions, redactURL(rawURL))
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", host, db
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	dsn := cfg.FormatDSN()
	if u.RawQuery != "" { // the driver's own parameters, checked by ParseDSN
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + u.RawQuery
	}
	if _, err := mysql.ParseDSN(dsn); err != nil {
		return "", fmt.Errorf("%w: store URL %s: %v", ErrBadOptions, redactURL(rawURL), redactErr(rawURL, err))
	}
	return dsn, nil
}

// OpenMySQLStore opens (creating its tables on first start) the store of
// cfg.Service in the MySQL or MariaDB database cfg.URL names
// (mysql://user:password@host:port/database).
func OpenMySQLStore(ctx context.Context, cfg StoreConfig) (*SQLStore, error) {
	prefix, err := sqlTablePrefix(cfg.Service)
	if err != nil {
		return nil, err
	}
	dsn, err := MySQLDSN(cfg.URL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: store URL %s: %v", ErrBadOptions, redactURL(cfg.URL), err)
	}
	db.SetMaxOpenConns(mysqlStoreMaxConns)
	db.SetMaxIdleConns(16)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to %s: %w", redactURL(cfg.URL), err)
	}
	b := &myBackend{db: db, inv: "`" + prefix + "_inventory`", resv: "`" + prefix + "_reservations`"}
	if err := b.open(ctx, cfg); err != nil {
		b.close()
		return nil, err
	}
	return newSQLStore(cfg.Service, b), nil
}

func openMySQLStore(ctx context.Context, cfg StoreConfig) (Store, error) {
	return OpenMySQLStore(ctx, cfg)
}

type myBackend struct {
	db   *sql.DB
	xa   *mysqlxa.Resource
	inv  string // quoted table names
	resv string
}

func (b *myBackend) open(ctx context.Context, cfg StoreConfig) error {
	for _, q := range []string{
		`CREATE TABLE IF NOT EXISTS ` + b.inv + ` (
			sku       VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
			pos       INT NOT NULL,
			capacity  BIGINT NOT NULL,
			available BIGINT NOT NULL,
			confirmed_base BIGINT NOT NULL DEFAULT 0) ENGINE=InnoDB`,
		`CREATE TABLE IF NOT EXISTS ` + b.resv + ` (
			txid     VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin PRIMARY KEY,
			sku      VARCHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
			quantity BIGINT NOT NULL,
			state    VARCHAR(16) NOT NULL,
			seq      BIGINT NOT NULL AUTO_INCREMENT,
			UNIQUE KEY seq (seq),
			KEY sku_state (sku, state)) ENGINE=InnoDB`,
	} {
		if _, err := b.db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("create tables: %w", err)
		}
	}
	if err := b.initStock(ctx, cfg); err != nil {
		return err
	}
	xa, err := mysqlxa.New(ctx, mysqlxa.Options{DB: b.db, Name: cfg.Service, Work: b.work, Remember: cfg.Remember, Now: cfg.Now})
	if err != nil {
		return err
	}
	b.xa = xa
	return releaseOrphans(ctx, b)
}

// initStock fills a new inventory table, or checks the stored one against
// the configuration. A named lock keeps two first starts from both filling.
func (b *myBackend) initStock(ctx context.Context, cfg StoreConfig) (err error) {
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	lock := "concord-stock-" + b.inv
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, 30)", lock).Scan(&got); err != nil || got.Int64 != 1 {
		return fmt.Errorf("lock inventory table: %v (GET_LOCK = %v)", err, got)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "DO RELEASE_LOCK(?)", lock)
	rows, err := conn.QueryContext(ctx, "SELECT sku, capacity FROM "+b.inv+" ORDER BY pos")
	if err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	var stored []Stock
	for rows.Next() {
		var s Stock
		if err := rows.Scan(&s.SKU, &s.Capacity); err != nil {
			rows.Close()
			return fmt.Errorf("read inventory: %w", err)
		}
		stored = append(stored, s)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read inventory: %w", err)
	}
	if len(stored) > 0 {
		return cfg.CheckStock(stored)
	}
	stock, _, err := cfg.stock()
	if err != nil {
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for i, s := range stock {
		if _, err := tx.ExecContext(ctx, "INSERT INTO "+b.inv+" (sku, pos, capacity, available) VALUES (?, ?, ?, ?)", s.SKU, i, s.Capacity, s.Capacity); err != nil {
			return fmt.Errorf("store inventory: %w", err)
		}
	}
	return tx.Commit()
}

func (b *myBackend) res() participant.OnePhaseResource { return b.xa }

func (b *myBackend) status(ctx context.Context, id concord.TxID) (xaStatus, error) {
	st, err := b.xa.Status(ctx, id)
	return xaStatus{state: string(st.State), reason: st.Reason}, err
}

// myQuerier is a connection, a transaction or an XA branch's connection.
type myQuerier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// work is the prepared (second) transaction: it turns id's held
// reservation into a committed one, visible once XA COMMIT runs. In one
// phase it holds and confirms at once.
func (b *myBackend) work(ctx context.Context, conn mysqlxa.Conn, id concord.TxID, payload json.RawMessage) (participant.PrepareResult, error) {
	m := workModeOf(ctx)
	if m.refuse != "" {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: m.refuse}, nil
	}
	req, err := DecodeRequest(payload)
	if err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: err.Error()}, nil
	}
	if m.onePhase {
		ok, reason, err := b.take(ctx, conn, req)
		if err != nil || !ok {
			return participant.PrepareResult{Vote: concord.VoteNo, Reason: reason}, err
		}
		_, err = conn.ExecContext(ctx, "INSERT INTO "+b.resv+" (txid, sku, quantity, state) VALUES (?, ?, ?, 'committed')", string(id), req.SKU, req.Quantity)
		return participant.PrepareResult{Vote: concord.VoteYes}, err
	}
	res, err := conn.ExecContext(ctx, "UPDATE "+b.resv+" SET state = 'committed' WHERE txid = ? AND state = 'prepared'", string(id))
	if err != nil {
		return participant.PrepareResult{}, err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: "no hold for this transaction"}, err
	}
	return participant.PrepareResult{Vote: concord.VoteYes}, nil
}

// take lowers req.SKU's available count by req.Quantity, or says why not.
func (b *myBackend) take(ctx context.Context, q myQuerier, req Request) (bool, string, error) {
	res, err := q.ExecContext(ctx, "UPDATE "+b.inv+" SET available = available - ? WHERE sku = ? AND available >= ?", req.Quantity, req.SKU, req.Quantity)
	if err != nil {
		return false, "", err
	}
	if n, err := res.RowsAffected(); err != nil || n == 1 {
		return err == nil, "", err
	}
	var avail int64
	err = q.QueryRowContext(ctx, "SELECT available FROM "+b.inv+" WHERE sku = ?", req.SKU).Scan(&avail)
	if errors.Is(err, sql.ErrNoRows) {
		return false, reserveReason(req, false, 0), nil
	}
	if err != nil {
		return false, "", err
	}
	return false, reserveReason(req, true, avail), nil
}

func (b *myBackend) hold(ctx context.Context, id concord.TxID, req Request) (bool, string, error) {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return false, "", err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "INSERT INTO "+b.resv+" (txid, sku, quantity, state) VALUES (?, ?, ?, 'prepared') ON DUPLICATE KEY UPDATE txid = txid",
		string(id), req.SKU, req.Quantity)
	if err != nil {
		return false, "", err
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, "", err
	} else if n == 0 { // held before (a crash came between hold and prepare) or decided
		var state string
		if err := tx.QueryRowContext(ctx, "SELECT state FROM "+b.resv+" WHERE txid = ?", string(id)).Scan(&state); err != nil {
			return false, "", err
		}
		return state == string(StatePrepared), "reservation is already " + state, tx.Commit()
	}
	ok, reason, err := b.take(ctx, tx, req)
	if err != nil || !ok {
		return false, reason, err // rolled back by the deferred call
	}
	return true, "", tx.Commit()
}

func (b *myBackend) release(ctx context.Context, id concord.TxID) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var sku string
	var q int64
	err = tx.QueryRowContext(ctx, "SELECT sku, quantity FROM "+b.resv+" WHERE txid = ? AND state = 'prepared' FOR UPDATE", string(id)).Scan(&sku, &q)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+b.resv+" SET state = 'aborted' WHERE txid = ?", string(id)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE "+b.inv+" SET available = available + ? WHERE sku = ?", q, sku); err != nil {
		return err
	}
	return tx.Commit()
}

func (b *myBackend) items(ctx context.Context) ([]Item, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT i.sku, i.capacity, i.available,
		COALESCE(SUM(CASE WHEN r.state = 'prepared' THEN r.quantity END), 0),
		i.confirmed_base + COALESCE(SUM(CASE WHEN r.state = 'committed' THEN r.quantity END), 0)
		FROM `+b.inv+` i LEFT JOIN `+b.resv+` r ON r.sku = i.sku
		GROUP BY i.sku, i.pos, i.capacity, i.available, i.confirmed_base ORDER BY i.pos`)
	if err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	defer rows.Close()
	var items []Item
	for rows.Next() {
		var it Item
		if err := rows.Scan(&it.SKU, &it.Capacity, &it.Available, &it.Held, &it.Confirmed); err != nil {
			return nil, fmt.Errorf("read inventory: %w", err)
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read inventory: %w", err)
	}
	return items, nil
}

func (b *myBackend) queryReservations(ctx context.Context, where string, args ...any) ([]Reservation, error) {
	rows, err := b.db.QueryContext(ctx, "SELECT txid, sku, quantity, state FROM "+b.resv+" "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Reservation
	for rows.Next() {
		var r Reservation
		var id, state string
		if err := rows.Scan(&id, &r.SKU, &r.Quantity, &state); err != nil {
			return nil, err
		}
		r.ID, r.State = concord.TxID(id), State(state)
		out = append(out, r)
	}
	return out, rows.Err()
}

func (b *myBackend) reservation(ctx context.Context, id concord.TxID) (Reservation, bool, error) {
	list, err := b.queryReservations(ctx, "WHERE txid = ?", string(id))
	if err != nil || len(list) == 0 {
		if err != nil {
			err = fmt.Errorf("read reservation %s: %w", id, err)
		}
		return Reservation{}, false, err
	}
	return list[0], true, nil
}

func (b *myBackend) reservations(ctx context.Context, s State) ([]Reservation, error) {
	list, err := b.queryReservations(ctx, "WHERE ? = '' OR state = ? ORDER BY txid", string(s), string(s))
	if err != nil {
		return nil, fmt.Errorf("list reservations: %w", err)
	}
	return list, nil
}

func (b *myBackend) decidedCount(ctx context.Context) (int64, error) {
	var n int64
	err := b.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+b.resv+" WHERE state IN ('committed', 'aborted')").Scan(&n)
	return n, err
}

func (b *myBackend) oldestDecided(ctx context.Context, limit int64) ([]Reservation, error) {
	return b.queryReservations(ctx, "WHERE state IN ('committed', 'aborted') ORDER BY seq LIMIT ?", limit)
}

func (b *myBackend) forget(ctx context.Context, old []Reservation, confirmed map[string]int64) error {
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for _, r := range old {
		if _, err := tx.ExecContext(ctx, "DELETE FROM "+b.resv+" WHERE txid = ? AND state IN ('committed', 'aborted')", string(r.ID)); err != nil {
			return err
		}
	}
	for sku, q := range confirmed {
		if _, err := tx.ExecContext(ctx, "UPDATE "+b.inv+" SET confirmed_base = confirmed_base + ? WHERE sku = ?", q, sku); err != nil {
			return err
		}
	}
	return tx.Commit()
}

func (b *myBackend) close() error {
	var err error
	if b.xa != nil {
		err = b.xa.Close()
	}
	return errors.Join(err, b.db.Close())
}
