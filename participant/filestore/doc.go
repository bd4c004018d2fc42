// Package filestore is Concord's embedded durable participant.Resource: a
// service supplies its deterministic domain logic as a Machine, and the store
// makes it transactional and durable on a write-ahead log (package wal) with
// snapshots.
package filestore
