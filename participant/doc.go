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
//	err = srv.Start(ctx)               // recovers prepared transactions, then asks about them
//	http.Handle("/v1/", srv.Handler()) // POST /v1/prepare, /v1/commit, /v1/abort
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
package participant
