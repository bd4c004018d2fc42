// Package race tells tests whether the race detector is on. Tests that
// count allocations skip under it: its instrumentation changes the counts,
// and sync.Pool drops items on purpose when it runs. CI runs those tests
// once more without it.
package race
