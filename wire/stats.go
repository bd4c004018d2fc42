package wire

import "runtime"

// PathStats is where the coordinator and every participant service report
// their counters as one JSON object, for benchmarks and operators.
const PathStats = "/v1/stats"

// RuntimeStats are a process's Go runtime figures, part of every
// PathStats answer.
type RuntimeStats struct {
	Goroutines     int    `json:"goroutines"`
	HeapAllocBytes uint64 `json:"heap_alloc_bytes"`
	HeapObjects    uint64 `json:"heap_objects"`
	SysBytes       uint64 `json:"sys_bytes"`
	NumGC          uint32 `json:"num_gc"`
	GOMAXPROCS     int    `json:"gomaxprocs"`
}

// ReadRuntimeStats returns the running process's figures. It stops the
// world briefly (runtime.ReadMemStats): call it per stats request, not per
// message.
func ReadRuntimeStats() RuntimeStats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return RuntimeStats{Goroutines: runtime.NumGoroutine(), HeapAllocBytes: m.HeapAlloc,
		HeapObjects: m.HeapObjects, SysBytes: m.Sys, NumGC: m.NumGC, GOMAXPROCS: runtime.GOMAXPROCS(0)}
}
