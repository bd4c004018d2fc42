// Package coordinator is Concord's coordinator service: it admits client
// transactions, drives the tpc state machine with the wal log, batches the
// participant protocol's messages, recovers from its log on start and serves
// the client API over HTTP.
package coordinator
