package openapi_test

import (
	"testing"

	"github.com/concordtx/concord/internal/apicheck"
	"github.com/concordtx/concord/openapi"
)

// Both documents are OpenAPI 3.1 documents kin-openapi loads and finds
// valid (every $ref resolves, every schema is well formed).
func TestDocumentsLoad(t *testing.T) {
	for name, raw := range map[string][]byte{"coordinator": openapi.Coordinator(), "participant": openapi.Participant()} {
		doc, err := apicheck.Load(raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !doc.IsOpenAPI31OrLater() {
			t.Fatalf("%s: version %s, want 3.1", name, doc.OpenAPI)
		}
	}
}
