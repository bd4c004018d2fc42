// Package participant is the SDK for writing a Concord participant: a service
// implements the small Resource interface, and Server speaks the participant
// wire protocol on top of it, owning duplicates, late messages and in-doubt
// resolution so that a service cannot get them wrong.
//
// A service that keeps its own state supplies only deterministic domain
// logic to package filestore, which makes it a durable Resource; a service
// on a database uses a Resource over its prepared transactions (packages
// pgxa and mysqlxa). Any Resource is checked by the conformance suite in
// package participanttest.
//
// Serving:
//
//	srv, err := participant.NewServer(participant.Options{Resource: store, Coordinator: "http://127.0.0.1:7070"})
//	...
//	err = srv.Start(ctx)            // recovers prepared transactions, then asks about them
//	http.Handle("/", srv.Handler()) // POST /v1/prepare, /v1/commit, /v1/abort; GET /openapi.json
//	...
//	srv.Close()
//
// A Resource that can also prepare (and commit) many transactions in one
// call, sharing one durable write among them, implements BatchResource; the
// Server then makes the prepares, and the commits, of one request as one
// call in the request's goroutine instead of one goroutine per transaction
// (package filestore does; the database resources do not, their calls being
// round trips to a server). A OnePhaseResource that can do the same for
// one-phase commits implements OnePhaseBatchResource.
//
// The protocol logic itself is the pure state machine tpc.Participant; the
// Server drives it with the resource calls, the outcome queries and the
// clock.
//
// # Deadlines and how long decisions are remembered
//
// Every PREPARE carries its transaction's deadline (deadline_ms, by the
// coordinator's clock) and the coordinator that decides it; the Server
// passes both to the resource as a PrepareInfo. A resource remembers each
// decision for a time, not a count, by the rule of Retention: a PREPARE for
// a transaction it holds no record of is refused (voted no, nothing
// remembered) once its deadline has passed by the resource's clock; a
// decision is kept until its deadline plus Retention.ClockSkew (default one
// minute); an ABORT that came before its PREPARE is kept as if its deadline
// were its time plus Retention.MaxLifetime (default 60 seconds, the
// coordinator's default maximum timeout: set it to at least the
// coordinator's --max-timeout) plus ClockSkew; a PREPARE without a deadline
// (an older coordinator) gets its arrival plus MaxLifetime. The resources
// of this module take the rule as an option (filestore.Options.Retention,
// pgxa.Options.Remember, mysqlxa.Options.Remember) with a clock (Now) that
// tests move. What a resource holds is then bounded by its rate of
// transactions times (timeout + skew). A COMMIT carries the deadline too
// (wire.DecisionRequest.DeadlinesMS): the Server acknowledges a COMMIT for a
// transaction its resource holds no record of once that deadline plus
// Options.Retention.ClockSkew has passed, as committed and forgotten (a yes
// voter keeps its prepared state until the decision), and fails it before. See docs/protocol.md, "How long a
// participant remembers".
//
// # The coordinator of a transaction in doubt
//
// A resource keeps, durably, the coordinator each prepared transaction's
// PREPARE named (a CoordinatorRef: its URLs and, with TLS, the identity
// the Server trusted then, Options.CoordinatorIdentity) and Recover returns
// it. After a restart the Server asks that coordinator about the
// transaction, not Options.Coordinator, which is asked only about
// transactions whose PREPARE named none (or that a resource prepared
// without keeping it). A transaction prepared under another coordinator
// identity than the one the Server now trusts is not asked about: it stays
// in doubt, and each attempt is logged, until that identity is trusted
// again.
package participant
