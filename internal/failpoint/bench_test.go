package failpoint

import "testing"

//go:noinline
func noFailpoint(string) {}

// BenchmarkBaseline is an empty non-inlined call, the floor Hit is compared to.
func BenchmarkBaseline(b *testing.B) {
	for b.Loop() {
		noFailpoint(CoordinatorAfterDecisionSync)
	}
}

// BenchmarkHitDisarmed is the cost in production: nothing armed.
func BenchmarkHitDisarmed(b *testing.B) {
	Disarm()
	for b.Loop() {
		Hit(CoordinatorAfterDecisionSync)
	}
}

// BenchmarkHitArmedElsewhere is the cost of a failpoint while another one
// is armed (a map lookup).
func BenchmarkHitArmedElsewhere(b *testing.B) {
	if err := Arm([]Term{{Name: ParticipantAfterCommit, Nth: 1}}, 1); err != nil {
		b.Fatal(err)
	}
	defer Disarm()
	for b.Loop() {
		Hit(CoordinatorAfterDecisionSync)
	}
}
