//go:build !race

package coordinator

// raceEnabled tells the tests that count allocations to skip: the race
// detector's instrumentation changes the counts, and sync.Pool drops items
// on purpose under it.
const raceEnabled = false
