// Package tpc is the two-phase commit protocol as pure state machines: no I/O,
// no goroutines, no clock reads. Each call takes an event (a begin, a vote, an
// acknowledgement, a tick, recovered log records) and returns a Ready: the log
// records to append, whether they must be durable first, the messages to send
// once they are, and the outcome to report. Drivers (package coordinator, the
// participant SDK, the simulator) perform those steps in that order.
//
// The coordinator side (CoordinatorTx, Begin, Recover) implements presumed
// abort: a transaction with no decision on record is aborted, aborts need no
// forced write and no acknowledgement, a read-only voter leaves after phase
// 1, and a transaction with one participant commits in one phase. Only the
// commit decision is forced (Ready.MustSync), and, for a transaction whose
// id may be submitted again (BeginResubmittable), every other decision the
// coordinator takes itself, so that a power loss cannot erase an outcome a
// client was told. After the commit decision the coordinator never
// aborts and redelivers COMMIT with capped exponential backoff until every
// yes voter acknowledges. Its log records (Record) encode to a small,
// strictly decoded binary form. docs/protocol.md specifies the messages and
// gives the messages and forced writes per case, which TestCoordinatorCosts
// checks.
//
// Scenario scripts in testdata (coordinator_*.txt, with reviewed .golden
// output) show the coordinator's behaviour step by step; rewrite the goldens
// with go test ./tpc -run TestCoordinatorScenarios -update.
package tpc
