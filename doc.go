// Package concord holds the vocabulary every part of Concord shares: transaction
// ids, votes, outcomes and the errors they are compared against.
//
// Concord is a distributed transaction manager. A coordinator runs two-phase
// commit with presumed abort over independent participants so that every
// reservation in a transaction is confirmed, or every one is cancelled, across
// crashes, timeouts and lost messages. The protocol itself lives in package tpc
// as a pure state machine; the coordinator, participant, wal and wire packages
// drive it.
package concord
