//go:build !unix

package wal

import "os"

// flock is a no-op where flock(2) does not exist: the LOCK file is created
// but a second process is not kept out.
func flock(*os.File) error { return nil }
