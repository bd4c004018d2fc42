// Package filestore is Concord's embedded durable participant.Resource: a
// service supplies its deterministic domain logic as a Machine, and the store
// makes it transactional and durable on a write-ahead log (package wal) with
// snapshots.
//
// The store remembers decisions by the time rule of participant.Retention
// (Options.Retention, with the clock Options.Now): each prepared or decided
// transaction's deadline, and a prepared one's coordinator, are in its log
// records and snapshots, so the remembered set survives restarts, and a
// decision is forgotten once its deadline plus the skew allowance has passed.
// Records and snapshots written by older versions, which carry no deadline,
// are read with the deadline of a PREPARE that gave none, from the time the
// store is opened.
package filestore
