package mysqlxa_test

import (
	"testing"

	"github.com/concordtx/concord/internal/testutil/testdb"
)

// TestMain stops the throwaway database servers the tests may have started.
func TestMain(m *testing.M) { testdb.Main(m) }
