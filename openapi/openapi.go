// Package openapi holds the OpenAPI 3.1 documents of Concord's two HTTP
// APIs, embedded in the binary: the coordinator's client and operator API
// (served at the coordinator's /openapi.json) and the participant protocol
// (served at a participant's /openapi.json). They are two documents because
// they are two servers: a participant implementer needs only the protocol,
// and a client only the coordinator's API.
//
// The tests of the coordinator, participant, client and wire packages send
// every request they make through internal/apicheck, which validates each
// request and answer against these documents, so the documents cannot
// drift from the handlers.
package openapi

import (
	_ "embed"
	"net/http"
)

// Path is where both servers serve their document.
const Path = "/openapi.json"

//go:embed coordinator.json
var coordinatorDoc []byte

//go:embed participant.json
var participantDoc []byte

// Coordinator returns the coordinator API's document (JSON). The caller
// must not modify it.
func Coordinator() []byte { return coordinatorDoc }

// Participant returns the participant protocol's document (JSON). The
// caller must not modify it.
func Participant() []byte { return participantDoc }

// Handler serves doc as application/json to GET and HEAD.
func Handler(doc []byte) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusMethodNotAllowed)
			w.Write([]byte(`{"error":"method ` + r.Method + ` not allowed on ` + Path + `; use GET"}` + "\n"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(doc)
	})
}
