// Package bench measures Concord's throughput and latency end to end: it
// drives a coordinator and its travel services (started here as separate
// processes, or already running) with concurrent clients, reads the
// processes' own counters, and measures the machine's floor (one
// append+fdatasync, one loopback round trip) in the same run.
package bench
