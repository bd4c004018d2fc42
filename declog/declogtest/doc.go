// Package declogtest is the conformance suite of declog.Log: exported test
// helpers that any implementation runs against itself, given a factory
// (Impl). Every implementation of the decision log must pass Run.
//
// The suite checks the contract of package declog: sequence numbers from 1
// without gaps, in order; Replay from any sequence number; durability
// across Close and reopen; AppendAsync made durable by Sync and by Close;
// group commit under concurrent appenders (run it with -race); Compact
// keeping every record at or after its bound and freeing some before it;
// every acknowledged record surviving a crash (with Store.Crash); and the
// final states: closed, poisoned (with Store.Poison) and fenced (with
// Store.Fence).
package declogtest
