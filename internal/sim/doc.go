// Package sim is a deterministic simulator of a whole Concord deployment: one
// goroutine, one seeded random source and a simulated clock drive the real
// protocol cores, the real log on an in-memory file system and a simulated
// network, with crashes, restarts and message faults at every step, and a
// checker asserts the protocol's invariants at the end of every run.
package sim
