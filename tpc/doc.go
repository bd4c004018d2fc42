// Package tpc is the two-phase commit protocol as pure state machines: no I/O,
// no goroutines, no clock reads. Each call takes an event (a begin, a vote, an
// acknowledgement, a tick, recovered log records) and returns a Ready: the log
// records to append, whether they must be durable first, the messages to send
// once they are, and the outcome to report. Drivers (package coordinator, the
// participant SDK, the simulator) perform those steps in that order.
//
// The coordinator side implements presumed abort: a transaction with no
// decision on record is aborted, aborts need no forced write and no
// acknowledgement, a read-only voter leaves after phase 1, and a transaction
// with one participant commits in one phase.
package tpc
