// Package memfs is an in-memory wal.FS that simulates crashes, forgetting
// every write and directory change not yet synced, and injects errors.
package memfs
