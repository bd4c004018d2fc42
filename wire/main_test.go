package wire_test

import (
	"testing"

	"github.com/concordtx/concord/internal/apicheck"
)

// TestMain validates every request the tests send with http.DefaultClient
// (the participant client's default) and its answer against the OpenAPI
// documents (internal/apicheck).
func TestMain(m *testing.M) { apicheck.Main(m) }
