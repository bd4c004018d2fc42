//go:build race

package tpc

// raceEnabled tells the tests that count allocations to skip: the race
// detector's instrumentation changes the counts, and sync.Pool drops items
// on purpose under it.
const raceEnabled = true
