// Package sim is a deterministic simulator of a whole Concord deployment
// that checks the two-phase commit invariants under every crash point and
// every message fault, each run replayable from its seed.
//
// One goroutine, one seeded random source (math/rand/v2, PCG) and a
// simulated clock drive a coordinator and several participants built from
// the real parts: the tpc coordinator and participant state machines, the
// tpc record codec, wal on wal/memfs (a crash forgets every unsynced
// write), and participant/filestore over the travel inventory. The drivers
// are the simulator's own and small: they perform every Ready in order
// (persist, then send), as the real coordinator and participant.Server do.
//
// Faults: message loss, duplication, reordering and delay, partitions that
// come and go, and crashes of any node at any step (between a write and its
// sync, between a sync and the send that follows, before a reply), with
// restarts that recover from what was durable. A workload of concurrent
// transactions votes yes, no and read-only and runs services out of stock.
// Every run ends by healing every fault and letting the system settle; the
// checker (history.go, checker.go) asserts agreement, validity, stability,
// no unilateral abort after a yes vote, presumption safety, idempotence and
// no hanging reservations, monotonic states, non-triviality, conservation
// of stock, and liveness once healed, online as events happen and at the
// end.
//
// Running it:
//
//	go test ./internal/sim                                 # 2,000 seeds
//	go test -v -run 'TestSimulation$' ./internal/sim       # ... and show the summary line
//	go test ./internal/sim -run 'TestSimulation$' -seeds 100000   # soak
//	go test ./internal/sim -run 'TestSimulation$' -duration 10m   # soak for a time
//	go test ./internal/sim -run 'TestSimulation$' -seed 1831      # replay one seed with its trace
//
// -store sim runs the participants on the simulator's own store instead of
// participant/filestore. A failing seed prints the command that replays it
// and the trace that led to its violation.
package sim
