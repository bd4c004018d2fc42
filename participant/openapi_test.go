package participant_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/concordtx/concord/openapi"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/participant/participanttest"
)

// The protocol handler serves the participant protocol's OpenAPI document
// at /openapi.json, as embedded.
func TestOpenAPIServed(t *testing.T) {
	srv, err := participant.NewServer(participant.Options{Resource: participanttest.NewMemResource()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	resp, err := http.Get(hs.URL + openapi.Path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(b, openapi.Participant()) {
		t.Fatalf("GET %s: %d %s, %d bytes; want the embedded document", openapi.Path, resp.StatusCode, resp.Header.Get("Content-Type"), len(b))
	}
}
