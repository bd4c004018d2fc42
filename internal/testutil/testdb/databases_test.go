package testdb

import (
	"fmt"
	"testing"
	"time"
)

func TestStaleNames(t *testing.T) {
	old := fmt.Sprintf("%s%d_abcd0123", namePrefix, time.Now().Add(-2*staleAfter).Unix())
	if !stale(old) {
		t.Errorf("%s should be stale", old)
	}
	for _, n := range []string{uniqueName(t), "concord_tabc", "test", namePrefix + "12x_ab"} {
		if stale(n) {
			t.Errorf("%s should not be stale", n)
		}
	}
}
