// Package cputime reads the processor time of the running process, for
// benchmarks that report CPU per operation: on a shared machine that holds
// steadier than wall time.
package cputime
