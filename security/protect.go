package security

import (
	"encoding/json"
	"mime"
	"net/http"
)

// Protect wraps an API handler with the checks every Concord listener
// makes before anything else:
//
//   - a cross-origin browser request that is not a safe method (GET, HEAD,
//     OPTIONS) is refused 403 (http.CrossOriginProtection: the
//     Sec-Fetch-Site header, else Origin against Host), so that a page an
//     operator visits cannot submit, abort or retry in the operator's
//     name;
//   - a request with a Transfer-Encoding (net/http has by then dropped a
//     Content-Length sent with it) is answered with Connection: close, so
//     that a request smuggled past a front end that read the
//     Content-Length cannot ride on the same connection (RFC 9112 §6.1).
func Protect(h http.Handler) http.Handler {
	inner := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TransferEncoding) > 0 {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, http.StatusForbidden, "forbidden: cross-origin "+r.Method+" refused")
	}))
	return cop.Handler(inner)
}

// RequireJSON answers 415 and returns false unless r says Content-Type:
// application/json (charset parameters allowed). Every handler that acts
// on a POST calls it first, body or not: an HTML form or a "simple"
// cross-site fetch cannot send that type without a CORS preflight, which
// Concord never grants, so a page an operator visits cannot forge one.
func RequireJSON(w http.ResponseWriter, r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err == nil && mt == "application/json" {
		return true
	}
	writeJSONError(w, http.StatusUnsupportedMediaType,
		"unsupported media type: a "+r.Method+" must be Content-Type: application/json")
	return false
}

// writeJSONError writes the body of a wire.ErrorResponse (which this
// package cannot import) with status.
func writeJSONError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Connection", "close")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}
