package travel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/wal"
)

// ErrStockMismatch is returned when a store already holds an inventory and
// the configuration explicitly asks for a different one.
var ErrStockMismatch = errors.New("stored inventory differs from the configured one")

// ErrUnknownStore is returned by OpenStore for a store URL whose kind no
// store registered.
var ErrUnknownStore = errors.New("unknown store")

// StoreConfig says which store a service keeps its inventory in, and where.
type StoreConfig struct {
	// Service is the service's name; stores use it in names of files,
	// tables or transaction ids. Required.
	Service string
	// URL selects the store: "" or "file" for the file store in Dir (the
	// default), "memory" for a MemStore (nothing survives the process), or
	// a URL whose scheme a database store registered with RegisterStore,
	// such as postgres://... or mysql://....
	URL string
	// Dir is the file store's directory. Required for the file store.
	Dir string
	// FS is the file store's file system; nil means the operating system's.
	FS wal.FS
	// Stock is the inventory a new store starts with; nil means
	// DefaultInventory(Service). A store that already holds an inventory
	// keeps it, and refuses to open with ErrStockMismatch if Stock is given
	// and differs.
	Stock []Stock
	// Remember is the time rule by which the store remembers decisions
	// (participant.Retention; zero fields take its defaults), and Now its
	// clock (nil: time.Now). A MemStore ignores both.
	Remember participant.Retention
	Now      func() time.Time
	// FileStore, when set, tunes the file store: every field is used but
	// Dir, FS, Machine, Retention and Now, which are always
	// the store's own and Remember's and Now's above. nil
	// takes filestore.DefaultOptions. A simulator sets small segments and
	// frequent snapshots so that rolls and compaction happen.
	FileStore *filestore.Options
}

// stock returns the inventory a new store starts with and whether it was
// given explicitly.
func (c *StoreConfig) stock() ([]Stock, bool, error) {
	if c.Stock != nil {
		if err := validateStock(c.Stock); err != nil {
			return nil, false, err
		}
		return c.Stock, true, nil
	}
	s, err := DefaultInventory(c.Service)
	return s, false, err
}

// CheckStock compares the inventory a store holds with the configured one:
// it returns nil when stock is not given explicitly (c.Stock nil) or equal,
// else an error wrapping ErrStockMismatch that shows both.
func (c *StoreConfig) CheckStock(stored []Stock) error {
	if c.Stock == nil || slices.Equal(c.Stock, stored) {
		return nil
	}
	return fmt.Errorf("%w: the store holds %s, the configuration asks for %s; start with the stored inventory (omit it) or a new store",
		ErrStockMismatch, FormatInventory(stored), FormatInventory(c.Stock))
}

// StoreOpener opens one kind of store.
type StoreOpener func(ctx context.Context, cfg StoreConfig) (Store, error)

var (
	openersMu sync.RWMutex
	openers   = map[string]StoreOpener{}
)

// RegisterStore makes OpenStore open URLs with the given scheme by calling
// open. Database stores call it from an init function. Registering a scheme
// twice panics.
func RegisterStore(scheme string, open StoreOpener) {
	openersMu.Lock()
	defer openersMu.Unlock()
	if _, dup := openers[scheme]; dup || scheme == "file" || scheme == "memory" {
		panic("travel: store " + scheme + " registered twice")
	}
	openers[scheme] = open
}

// StoreKinds lists the store kinds OpenStore accepts.
func StoreKinds() []string {
	openersMu.RLock()
	defer openersMu.RUnlock()
	kinds := []string{"file", "memory"}
	for k := range openers {
		kinds = append(kinds, k+"://...")
	}
	sort.Strings(kinds[2:])
	return kinds
}

// OpenStore opens the store cfg.URL names.
func OpenStore(ctx context.Context, cfg StoreConfig) (Store, error) {
	if cfg.Service == "" {
		return nil, fmt.Errorf("%w: StoreConfig.Service is required", ErrBadOptions)
	}
	switch cfg.URL {
	case "", "file":
		return OpenFileStore(cfg)
	case "memory":
		stock, _, err := cfg.stock()
		if err != nil {
			return nil, err
		}
		return NewMemStore(stock)
	}
	scheme, _, ok := strings.Cut(cfg.URL, "://")
	if !ok {
		return nil, fmt.Errorf("%w %q: want file, memory or one of %s", ErrUnknownStore, redactURL(cfg.URL), strings.Join(StoreKinds(), ", "))
	}
	openersMu.RLock()
	open := openers[scheme]
	openersMu.RUnlock()
	if open == nil {
		return nil, fmt.Errorf("%w %q: want one of %s", ErrUnknownStore, scheme+"://", strings.Join(StoreKinds(), ", "))
	}
	st, err := open(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s store: %w", scheme, err)
	}
	return st, nil
}

// redactURL hides a password in a store URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		if i := strings.LastIndex(s, "@"); i >= 0 {
			return "…" + s[i:]
		}
		return s
	}
	return u.Redacted()
}

// redactErr returns err with the password of store URL s, wherever the
// error repeats it, replaced by xxxxx: a driver's or net/url's message may
// quote the URL it could not parse.
func redactErr(s string, err error) error {
	if err == nil {
		return nil
	}
	pw := ""
	if u, perr := url.Parse(s); perr == nil && u.User != nil {
		pw, _ = u.User.Password()
	} else if _, rest, ok := strings.Cut(s, "://"); ok {
		if i := strings.LastIndex(rest, "@"); i >= 0 {
			if _, p, ok := strings.Cut(rest[:i], ":"); ok {
				pw = p
			}
		}
	}
	msg := err.Error()
	if ue, ok := err.(*url.Error); ok {
		// The rest quotes the URL whole, and the inner error may quote
		// part of a password (a bad %-escape in it).
		msg = ue.Err.Error()
		if strings.Contains(s, "@") {
			msg = "not a valid URL (is a special character in the user or password not %-encoded?)"
		}
	}
	if pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
		if esc := url.PathEscape(pw); esc != pw {
			msg = strings.ReplaceAll(msg, esc, "xxxxx")
		}
	}
	return errors.New(msg)
}
