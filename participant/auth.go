package participant

import (
	"crypto/x509"
	"fmt"
	"net/http"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// requireCoordinator admits protocol requests only from a verified client
// certificate in the coordinator role (security.RoleCoordinator) naming
// Options.CoordinatorIdentity: 401 without one (plain HTTP, or TLS without
// a client certificate), 403 for another identity or role (a client,
// another participant, a certificate whose name alone says coordinator).
// With no CoordinatorIdentity it admits all. A refusal closes the
// connection and is logged, rate-limited.
func (s *Server) requireCoordinator(next http.Handler) http.Handler {
	want := s.opts.CoordinatorIdentity
	if want == "" {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := security.PeerIdentity(r)
		role := security.PeerRole(r)
		switch {
		case !ok:
			s.refuse(w, r, id, http.StatusUnauthorized, fmt.Sprintf(
				"not authenticated: %s accepts only the coordinator (%s) with a client certificate signed by its CA", r.URL.Path, want))
		case id != want || role != security.RoleCoordinator:
			s.refuse(w, r, id, http.StatusForbidden, fmt.Sprintf(
				"forbidden: %s is not the coordinator (its certificate has role %q); only %s in role %s may prepare, commit or abort", id, role, want, security.RoleCoordinator))
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// refuse answers a refused protocol request, closes its connection, counts
// it and logs it (at most a few lines a second).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, id string, status int, msg string) {
	s.stats.refused.Add(1)
	s.refusedLog.Warn(s.log, "protocol request refused", "remote", r.RemoteAddr, "identity", id, "path", r.URL.Path, "status", status)
	w.Header().Set("Connection", "close")
	wire.WriteError(w, status, msg)
}

// coordinatorOnly returns a copy of hc that asks only an https server
// whose verified certificate is in the coordinator role and names
// identity, and follows no redirect: an outcome is taken from the
// coordinator or from no one.
func coordinatorOnly(hc *http.Client, identity string) *http.Client {
	c := *hc
	base := c.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &coordinatorTransport{base: base, identity: identity}
	c.CheckRedirect = security.NoRedirects
	return &c
}

type coordinatorTransport struct {
	base     http.RoundTripper
	identity string
}

func (t *coordinatorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s", security.ErrPlainHTTP, req.URL.Redacted())
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	var leaf *x509.Certificate
	if resp.TLS != nil && len(resp.TLS.VerifiedChains) > 0 && len(resp.TLS.VerifiedChains[0]) > 0 {
		leaf = resp.TLS.VerifiedChains[0][0]
	}
	if leaf == nil || security.Identity(leaf) != t.identity || security.Role(leaf) != security.RoleCoordinator {
		resp.Body.Close()
		return nil, fmt.Errorf("%w: %s did not prove to be the coordinator %q (a verified certificate in role %s)",
			security.ErrWrongPeer, req.URL.Host, t.identity, security.RoleCoordinator)
	}
	return resp, nil
}
