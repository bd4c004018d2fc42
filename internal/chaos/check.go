package chaos

import (
	"fmt"
	"sort"
	"strings"
)

// Reservation and transaction states as the public APIs spell them.
const (
	stateCommitted = "committed"
	stateAborted   = "aborted"
	statePrepared  = "prepared"
	statePreparing = "preparing"
)

// item is one SKU of a service's inventory as GET /v1/inventory reports it.
type item struct {
	SKU       string `json:"sku"`
	Capacity  int64  `json:"capacity"`
	Available int64  `json:"available"`
	Held      int64  `json:"held"`
	Confirmed int64  `json:"confirmed"`
}

// observation is what the public APIs said once the system had settled.
type observation struct {
	txs []*txRecord
	// coordinator holds GET /v1/transactions/{id}'s state per transaction;
	// a transaction it does not know is absent.
	coordinator map[string]string
	// reservations holds GET /v1/reservations/{id}'s state per service and
	// transaction; one the service does not know is absent.
	reservations map[string]map[string]string
	inventories  map[string][]item // per service
	capacity     map[string]map[string]int64
	// stillPending lists what the coordinator reports pending and
	// stillPrepared what each service reports prepared, after settling.
	stillPending  []string
	stillPrepared map[string][]string
	// retention is how many decided reservations a service remembers; past
	// it a missing reservation is forgotten, not lost.
	retention int
	// unreachable lists the public APIs that did not answer.
	unreachable []string
}

// verdict is the checker's result.
type verdict struct {
	violations []string
	// forgotten counts reservations a service no longer remembers because
	// it saw more transactions than it keeps.
	forgotten int
	// inexactStock lists the services whose confirmed stock could not be
	// compared with the sum of committed quantities (past retention).
	inexactStock []string
}

// check asserts the invariants over an observation: agreement between
// services, the client's answer and the coordinator; nothing left prepared
// or pending; conservation of every inventory.
func check(o observation) verdict {
	var v verdict
	bad := func(format string, args ...any) { v.violations = append(v.violations, fmt.Sprintf(format, args...)) }
	for _, api := range o.unreachable {
		bad("public API did not answer after settling: %s", api)
	}
	touches := map[string]int{}
	for _, tx := range o.txs {
		for _, b := range tx.Branches {
			touches[b.Service]++
		}
	}
	lenient := func(service string) bool { return touches[service] > o.retention }

	expected := map[string]map[string]int64{} // service -> sku -> committed quantity
	for _, tx := range o.txs {
		id := string(tx.ID)
		var committed, aborted, missing, prepared []string
		for _, b := range tx.Branches {
			switch st, ok := o.reservations[b.Service][id]; {
			case !ok:
				missing = append(missing, b.Service)
			case st == stateCommitted:
				committed = append(committed, b.Service)
			case st == stateAborted:
				aborted = append(aborted, b.Service)
			case st == statePrepared:
				prepared = append(prepared, b.Service)
			default:
				bad("%s: %s reports unknown state %q", id, b.Service, st)
			}
		}
		coord, coordKnows := o.coordinator[id]
		if tx.Refused != "" {
			bad("%s: the coordinator refused a well-formed booking: %s", id, tx.Refused)
		}
		if len(prepared) > 0 {
			bad("%s: still prepared at %s after settling", id, strings.Join(prepared, ", "))
		}
		if coordKnows && coord != stateCommitted && coord != stateAborted {
			bad("%s: coordinator still reports %q after settling", id, coord)
		}
		if len(committed) > 0 && len(aborted) > 0 {
			bad("%s: committed at %s but aborted at %s", id, strings.Join(committed, ", "), strings.Join(aborted, ", "))
		}
		if len(committed) > 0 {
			for _, s := range missing {
				if lenient(s) {
					v.forgotten++
				} else {
					bad("%s: committed at %s but %s has no record of it", id, strings.Join(committed, ", "), s)
				}
			}
		}
		if tx.Answer == stateCommitted && len(committed) < len(tx.Branches) {
			for _, s := range append(append(aborted, prepared...), missing...) {
				if !(lenient(s) && contains(missing, s)) {
					bad("%s: client was told committed but %s did not commit", id, s)
				}
			}
		}
		if tx.Answer == stateAborted && len(committed) > 0 {
			bad("%s: client was told aborted but %s committed", id, strings.Join(committed, ", "))
		}
		if coordKnows {
			if coord == stateCommitted && len(aborted) > 0 {
				bad("%s: coordinator says committed but %s aborted", id, strings.Join(aborted, ", "))
			}
			if coord == stateAborted && len(committed) > 0 {
				bad("%s: coordinator says aborted but %s committed", id, strings.Join(committed, ", "))
			}
			if tx.Answer != "" && (coord == stateCommitted || coord == stateAborted) && coord != tx.Answer {
				bad("%s: client was told %s but the coordinator says %s", id, tx.Answer, coord)
			}
		}
		// Every committed booking must show in its service's confirmed stock.
		if len(committed) > 0 || tx.Answer == stateCommitted || coord == stateCommitted {
			for _, b := range tx.Branches {
				if expected[b.Service] == nil {
					expected[b.Service] = map[string]int64{}
				}
				expected[b.Service][b.SKU] += b.Quantity
			}
		}
	}
	for _, id := range o.stillPending {
		bad("coordinator still has %s pending after settling", id)
	}
	for _, s := range sortedKeys(o.stillPrepared) {
		for _, id := range o.stillPrepared[s] {
			bad("%s still holds %s prepared after settling", s, id)
		}
	}
	for _, s := range sortedKeys(o.capacity) {
		// Past retention a committed booking may be forgotten everywhere
		// and its quantity is then unknown: compare totals only below it.
		exact := !lenient(s)
		if !exact {
			v.inexactStock = append(v.inexactStock, s)
		}
		checkInventory(s, o.capacity[s], o.inventories[s], expected[s], exact, bad)
	}
	return v
}

// checkInventory asserts conservation at one service: every configured SKU
// present, available+held+confirmed = capacity, nothing held once settled,
// and (when exact) confirmed = the sum of committed quantities.
func checkInventory(service string, capacity map[string]int64, items []item, committed map[string]int64, exact bool, bad func(string, ...any)) {
	seen := map[string]bool{}
	for _, it := range items {
		seen[it.SKU] = true
		want, ok := capacity[it.SKU]
		if !ok {
			bad("%s: inventory lists unknown SKU %s", service, it.SKU)
			continue
		}
		if it.Capacity != want {
			bad("%s %s: capacity %d, configured %d", service, it.SKU, it.Capacity, want)
		}
		if it.Available+it.Held+it.Confirmed != it.Capacity || it.Available < 0 || it.Held < 0 || it.Confirmed < 0 {
			bad("%s %s: available %d + held %d + confirmed %d != capacity %d", service, it.SKU, it.Available, it.Held, it.Confirmed, it.Capacity)
		}
		if it.Held != 0 {
			bad("%s %s: %d still held after settling", service, it.SKU, it.Held)
		}
		if exact && it.Confirmed != committed[it.SKU] {
			bad("%s %s: confirmed %d, but committed bookings total %d", service, it.SKU, it.Confirmed, committed[it.SKU])
		}
	}
	for sku := range capacity {
		if !seen[sku] && len(items) > 0 {
			bad("%s: inventory lacks SKU %s", service, sku)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
