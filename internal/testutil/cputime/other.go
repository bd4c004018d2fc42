//go:build !unix

package cputime

import "time"

// Process reports that the processor time is not known here.
func Process() (time.Duration, bool) { return 0, false }
