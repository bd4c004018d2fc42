package participant

import (
	"fmt"
	"net/http"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// requireCoordinator admits protocol requests only from a verified client
// certificate naming Options.CoordinatorIdentity: 401 without one (plain
// HTTP, or TLS without a client certificate), 403 for another identity (a
// client, another participant). With no CoordinatorIdentity it admits all.
func (s *Server) requireCoordinator(next http.Handler) http.Handler {
	want := s.opts.CoordinatorIdentity
	if want == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := security.PeerIdentity(r)
		switch {
		case !ok:
			s.stats.refused.Add(1)
			wire.WriteError(w, http.StatusUnauthorized, fmt.Sprintf(
				"not authenticated: %s accepts only the coordinator (%s) with a client certificate signed by its CA", r.URL.Path, want))
		case id != want:
			s.stats.refused.Add(1)
			wire.WriteError(w, http.StatusForbidden, fmt.Sprintf(
				"forbidden: %s is not the coordinator; only %s may prepare, commit or abort", id, want))
		default:
			next.ServeHTTP(w, r)
		}
	})
}
