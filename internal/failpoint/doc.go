// Package failpoint lets a process be killed abruptly, as kill -9 would, at
// named points of the coordinator and the participants, armed by the
// CONCORD_FAILPOINTS environment variable.
//
// A failpoint is one call placed in the code right after a step whose crash
// recovery must be tested:
//
//	failpoint.Hit(failpoint.CoordinatorAfterDecisionSync)
//
// The environment variable holds a comma-separated list of name=action terms:
//
//	CONCORD_FAILPOINTS=coordinator.after-decision-sync=crash           crash on the first hit
//	CONCORD_FAILPOINTS=participant.after-prepare-sync=crash@3          crash on the 3rd hit
//	CONCORD_FAILPOINTS=participant.after-commit=crash%10               crash on each hit with probability 10%
//	CONCORD_FAILPOINTS_SEED=42                                         seeds the probabilities (default: random)
//
// A crash writes one line to standard error naming the failpoint, then sends
// SIGKILL to its own process: no deferred function runs, nothing is flushed,
// and unsynced file data is at the mercy of the operating system, exactly as
// with kill -9 from outside.
//
// A process that links this package refuses to start (exit status 2, with a
// message naming the problem) when CONCORD_FAILPOINTS names an unknown
// failpoint or has bad syntax. Disarmed, Hit costs one atomic pointer load.
package failpoint
