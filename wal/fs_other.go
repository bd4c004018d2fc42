//go:build !linux

package wal

import "os"

// datasync flushes f with fsync(2) where fdatasync is not available.
func datasync(f *os.File) error { return f.Sync() }
