package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/concordtx/concord"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/filestore"
	"github.com/concordtx/concord/travel"
	"github.com/concordtx/concord/wal/memfs"
)

// StoreKind picks the participants' durable resource.
type StoreKind uint8

const (
	// FileStore is the real embedded backend, participant/filestore, over
	// the travel inventory. The default.
	FileStore StoreKind = iota
	// SimStore is the simulator's own inventory resource on wal, with the
	// same durability discipline and crash points inside it.
	SimStore
)

func (k StoreKind) String() string {
	if k == SimStore {
		return "sim"
	}
	return "filestore"
}

// resource is a participant's durable resource as the simulator drives it.
type resource interface {
	participant.OnePhaseResource
	// state is where transaction id stands, for the checker ("" if the
	// resource does not know it).
	state(id concord.TxID) travel.State
	// items and check read the inventory behind the resource.
	items() []travel.Item
	check() error
	// snapshot writes a snapshot, if the resource takes them.
	snapshot() error
	// close stops the resource of a crashed incarnation.
	close()
}

// errInjected is the failure of a sync the simulator turned into a crash.
var errInjected = errors.New("sim: power lost before the sync")

// inventoryMachine is the travel inventory as a filestore.Machine. A
// read-only payload votes read-only.
type inventoryMachine struct{ inv *travel.Inventory }

var _ filestore.Machine = inventoryMachine{}

func (m inventoryMachine) Prepare(id concord.TxID, payload json.RawMessage) participant.PrepareResult {
	if isReadOnlyPayload(payload) {
		return participant.PrepareResult{Vote: concord.VoteReadOnly}
	}
	if _, err := m.inv.Reserve(id, payload); err != nil {
		return participant.PrepareResult{Vote: concord.VoteNo, Reason: err.Error()}
	}
	return participant.PrepareResult{Vote: concord.VoteYes}
}

func (m inventoryMachine) Commit(id concord.TxID)    { m.inv.Commit(id) }
func (m inventoryMachine) Abort(id concord.TxID)     { m.inv.Abort(id) }
func (m inventoryMachine) Snapshot() ([]byte, error) { return m.inv.Snapshot() }
func (m inventoryMachine) Restore(data []byte) error { return m.inv.Restore(data) }

// fileResource drives a real filestore.Store. Crash points inside a call
// are injected through the disk: an armed crash fails the next sync (the
// record is written, not durable), the store breaks, and the simulator
// crashes the node, so the disk forgets the write.
type fileResource struct {
	p      *partNode
	st     *filestore.Store
	inv    *travel.Inventory
	armed  *atomic.Bool
	fired  *atomic.Bool
	armFor string
}

var _ resource = (*fileResource)(nil)

// openFileResource opens the node's filestore. Snapshots are taken by the
// simulator (deterministically), not in the background; segments are large
// enough not to roll within a run, since a roll syncs unforced records at a
// moment decided by the log's writer goroutine.
func openFileResource(p *partNode) (*fileResource, error) {
	inv, err := travel.NewInventory(p.stock)
	if err != nil {
		return nil, err
	}
	st, err := filestore.Open(filestore.Options{
		Dir: storeDir, FS: p.disk, Machine: inventoryMachine{inv},
		SegmentSize: 1 << 20, SnapshotEvery: 1 << 30,
		// Zeros ahead of the records in small steps: the in-memory disk
		// copies whatever a file holds at every crash, and the default
		// megabyte made the simulation several times slower.
		Preallocate: 4 << 10,
		// No other call can come along to share a commit's sync in a
		// single-threaded run: waiting for one would only cost wall time.
		CommitSyncDelay: -1,
		// The log's idle mark runs on the wall clock, which would make a
		// seed's run depend on how fast it ran; warnings of cut torn
		// tails are the simulation's expected business.
		IdleMark: -1, Logger: discardLogger,
		// Time is the simulation's. Its PREPAREs carry no deadline: a
		// day of lifetime keeps every decision for the whole of a run,
		// as the count of 100,000 the store kept before did.
		Now:       func() time.Time { return p.s.sched.now },
		Retention: participant.Retention{MaxLifetime: 24 * time.Hour},
	})
	if err != nil {
		return nil, err
	}
	return &fileResource{p: p, st: st, inv: inv, armed: p.armed, fired: p.fired}, nil
}

// arm decides whether the call about to be made dies at its sync.
func (r *fileResource) arm(point string) {
	if r.p.s.shouldCrash() {
		r.armed.Store(true)
		r.armFor = point
	}
}

// disarm reports errCrashed if the armed crash happened, and crashes the
// node.
func (r *fileResource) disarm(err error) error {
	r.armed.Store(false)
	if r.fired.Swap(false) {
		r.p.crash(r.armFor + ": record written, sync failed")
		return errCrashed
	}
	return err
}

func (r *fileResource) Prepare(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (participant.PrepareResult, error) {
	r.arm("filestore prepare " + string(id))
	res, err := r.st.Prepare(ctx, id, payload, info)
	return res, r.disarm(err)
}

func (r *fileResource) Commit(ctx context.Context, id concord.TxID) error {
	r.arm("filestore commit " + string(id))
	return r.disarm(r.st.Commit(ctx, id))
}

func (r *fileResource) Abort(ctx context.Context, id concord.TxID) error {
	r.arm("filestore abort " + string(id))
	return r.disarm(r.st.Abort(ctx, id))
}

func (r *fileResource) CommitOnePhase(ctx context.Context, id concord.TxID, payload json.RawMessage, info participant.PrepareInfo) (concord.Outcome, string, error) {
	r.arm("filestore one-phase commit " + string(id))
	o, reason, err := r.st.CommitOnePhase(ctx, id, payload, info)
	return o, reason, r.disarm(err)
}

func (r *fileResource) Recover(ctx context.Context) ([]participant.RecoveredTx, error) {
	return r.st.Recover(ctx)
}

func (r *fileResource) state(id concord.TxID) travel.State {
	switch st, _ := r.st.State(id); st {
	case filestore.StatePrepared:
		return travel.StatePrepared
	case filestore.StateCommitted:
		return travel.StateCommitted
	case filestore.StateAborted:
		return travel.StateAborted
	}
	return ""
}

func (r *fileResource) items() (items []travel.Item) {
	r.st.View(func() { items = r.inv.Items() })
	return items
}

func (r *fileResource) check() (err error) {
	r.st.View(func() { err = r.inv.Check() })
	return err
}

func (r *fileResource) snapshot() error {
	r.arm("filestore snapshot")
	if err := r.disarm(r.st.Snapshot()); err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

func (r *fileResource) close() { r.st.Close() }

// installCrashHook makes the node's disk fail the next sync while a crash
// is armed.
func installCrashHook(disk *memfs.FS, armed, fired *atomic.Bool) {
	disk.SetFault(func(op memfs.Op, name string) error {
		if op == memfs.OpSync && armed.CompareAndSwap(true, false) {
			fired.Store(true)
			return errInjected
		}
		return nil
	})
}
