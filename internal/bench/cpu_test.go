package bench

import (
	"runtime"
	"testing"
	"time"
)

// The bench's own CPU time grows while it spins, so the per-transaction CPU
// figures measure something.
func TestCPUTimeGrows(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := cpuTime(0)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for {
		for i := 0; i < 1_000_000; i++ {
			x += i
		}
		after, err := cpuTime(0)
		if err != nil {
			t.Fatal(err)
		}
		if after > before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("CPU time stayed at %v after 5 s of spinning", before)
		}
	}
	_ = x
}
