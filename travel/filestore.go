package travel

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal"
)

// stockFile names the file, in a file store's directory, that holds the
// inventory the store was created with. The log replays prepares against
// it, so it never changes once written.
const stockFile = "inventory.json"

// maxStockFile bounds the stock file read at open.
const maxStockFile = 1 << 20

// FileStore is the default Store: the Inventory made durable by
// participant/filestore on a write-ahead log with snapshots, in one
// directory. A hold is on disk before its yes vote, a confirmation before
// the commit is acknowledged.
type FileStore struct {
	*filestore.Store
	inv *Inventory
}

var (
	_ Store                             = (*FileStore)(nil)
	_ participant.OnePhaseResource      = (*FileStore)(nil)
	_ participant.BatchResource         = (*FileStore)(nil)
	_ participant.OnePhaseBatchResource = (*FileStore)(nil)
	_ filestore.Machine                 = machine{}
)

// OpenFileStore opens (or creates) the file store in cfg.Dir.
func OpenFileStore(cfg StoreConfig) (*FileStore, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: the file store needs a directory", ErrBadOptions)
	}
	fsys := cfg.FS
	if fsys == nil {
		fsys = wal.OSFS{}
	}
	if err := fsys.MkdirAll(cfg.Dir); err != nil {
		return nil, fmt.Errorf("create %s: %w", cfg.Dir, err)
	}
	stock, err := loadStock(fsys, cfg.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// A store whose log exists without its stock file would replay
		// against capacities it was not written with.
		if names, err := fsys.ReadDir(filepath.Join(cfg.Dir, "store", "wal")); err == nil && len(names) > 0 {
			return nil, fmt.Errorf("open file store in %s: %w: it holds a log but no %s, so the capacities it was written against are unknown",
				cfg.Dir, filestore.ErrCorrupt, stockFile)
		}
		if stock, _, err = cfg.stock(); err != nil {
			return nil, err
		}
		if err := saveStock(fsys, cfg.Dir, stock); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if err := cfg.CheckStock(stock); err != nil {
			return nil, err
		}
	}
	inv, err := NewInventory(stock)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(cfg.Dir, stockFile), err)
	}
	var fo filestore.Options
	if cfg.FileStore != nil {
		fo = *cfg.FileStore
	}
	fo.Dir, fo.FS, fo.Machine = filepath.Join(cfg.Dir, "store"), fsys, machine{inv}
	fo.Retention, fo.Now = cfg.Remember, cfg.Now
	st, err := filestore.Open(fo)
	if err != nil {
		return nil, fmt.Errorf("open file store in %s: %w", cfg.Dir, err)
	}
	// A snapshot holds the capacities too: they must be the ones on file.
	if got := inv.Stock(); !slices.Equal(got, stock) {
		st.Close()
		return nil, fmt.Errorf("open file store in %s: %w: snapshot has %s, %s has %s", cfg.Dir, filestore.ErrCorrupt,
			FormatInventory(got), stockFile, FormatInventory(stock))
	}
	return &FileStore{Store: st, inv: inv}, nil
}

// Items lists every SKU's state.
func (f *FileStore) Items(context.Context) ([]Item, error) {
	var items []Item
	f.View(func() { items = f.inv.Items() })
	return items, nil
}

// Reservation returns id's reservation. One the inventory no longer details
// (refused, or decided longer ago than DecidedRetention) is reported with
// its state alone, and an aborted one with the reason, for as long as the
// file store remembers it (filestore.Options.Retain).
func (f *FileStore) Reservation(_ context.Context, id concord.TxID) (Reservation, error) {
	var r Reservation
	var err error
	var state filestore.TxState
	var reason string
	f.View(func() {
		r, err = f.inv.Reservation(id)
		state, reason = f.State(id)
	})
	if errors.Is(err, ErrNoReservation) {
		switch state {
		case filestore.StateAborted:
			return Reservation{ID: id, State: StateAborted, Reason: reason}, nil
		case filestore.StateCommitted:
			return Reservation{ID: id, State: StateCommitted}, nil
		}
	}
	return r, err
}

// Reservations lists the reservations in state s ("" for all). Refused
// reservations are not listed.
func (f *FileStore) Reservations(_ context.Context, s State) ([]Reservation, error) {
	var out []Reservation
	f.View(func() { out = f.inv.Reservations(s) })
	return out, nil
}

// Check verifies the inventory's conservation (see Inventory.Check).
func (f *FileStore) Check() error {
	var err error
	f.View(func() { err = f.inv.Check() })
	return err
}

// machine adapts an Inventory to filestore.Machine. The store calls it under
// its lock and only for transactions it voted yes on, so a failed commit or
// abort is a broken invariant.
type machine struct{ inv *Inventory }

func (m machine) Prepare(id concord.TxID, payload json.RawMessage) participant.PrepareResult {
	// The store answers repeated prepares itself; an id it has forgotten
	// but the inventory still remembers is refused rather than answered
	// from the old reservation, which the store would then decide twice.
	st, fresh, err := m.inv.reserveNew(id, payload)
	if !fresh {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: fmt.Sprintf("transaction id %s was already used here (%s)", id, st)}
	}
	return vote(err)
}

func (m machine) Commit(id concord.TxID) {
	if err := m.inv.Commit(id); err != nil {
		panic(fmt.Sprintf("travel: the store committed %s, which the inventory cannot: %v", id, err))
	}
}

func (m machine) Abort(id concord.TxID) {
	if err := m.inv.Abort(id); err != nil {
		panic(fmt.Sprintf("travel: the store aborted %s, which the inventory cannot: %v", id, err))
	}
}

func (m machine) Snapshot() ([]byte, error) { return m.inv.Snapshot() }
func (m machine) Restore(b []byte) error    { return m.inv.Restore(b) }

// loadStock reads the stock file in dir; a missing one wraps fs.ErrNotExist.
func loadStock(fsys wal.FS, dir string) ([]Stock, error) {
	name := filepath.Join(dir, stockFile)
	f, err := fsys.OpenFile(name, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if size > maxStockFile {
		return nil, fmt.Errorf("read %s: %d bytes, at most %d", name, size, maxStockFile)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	var stock []Stock
	if err := json.Unmarshal(b, &stock); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if err := validateStock(stock); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return stock, nil
}

// saveStock writes the stock file durably: a temporary file, synced, then
// renamed into place and the directory synced.
func saveStock(fsys wal.FS, dir string, stock []Stock) error {
	b, err := json.Marshal(stock)
	if err != nil {
		return err
	}
	name := filepath.Join(dir, stockFile)
	tmp := name + ".tmp"
	if err := fsys.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("write %s: %w", name, err)
	}
	f, err := fsys.Create(tmp)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err == nil {
		err = fsys.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
