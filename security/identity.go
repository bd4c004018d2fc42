package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Roles a certificate may carry. A role is marked apart from the name, by a
// URI subject alternative name RoleURIPrefix+role (for example
// spiffe://concord/coordinator), so that a client certificate can never
// pass for the coordinator or a participant by its name alone.
const (
	RoleCoordinator = "coordinator" // may prepare, commit and abort at participants; answers outcome queries
	RoleParticipant = "participant" // a resource manager: called by the coordinator, may ask outcomes of its branches
	RoleClient      = "client"      // submits and reads its own transactions
)

// RoleURIPrefix is the prefix of a role's URI SAN.
const RoleURIPrefix = "spiffe://concord/"

// Identity is the identity a certificate names: its subject common name,
// "" when it has none. There is no fallback to a DNS name: host names say
// where a service runs, not who it is. The coordinator's certificate names
// "coordinator" (or whatever participants are configured to expect), a
// participant's names the participant, a client's names the client.
func Identity(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	return cert.Subject.CommonName
}

// Role is the role a certificate's URI SAN marks (RoleCoordinator,
// RoleParticipant or RoleClient), "" when it marks none, an unknown one, or
// more than one.
func Role(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	role := ""
	for _, u := range cert.URIs {
		s, ok := strings.CutPrefix(u.String(), RoleURIPrefix)
		if !ok {
			continue
		}
		if role != "" || (s != RoleCoordinator && s != RoleParticipant && s != RoleClient) {
			return ""
		}
		role = s
	}
	return role
}

// PeerIdentity returns the identity of the verified client certificate r
// came with, and false when r came over plain HTTP or without a
// certificate that verified against the configured CA.
func PeerIdentity(r *http.Request) (string, bool) {
	leaf := peerLeaf(r)
	id := Identity(leaf)
	return id, id != ""
}

// PeerRole returns the role of the verified client certificate r came
// with, "" when none.
func PeerRole(r *http.Request) string { return Role(peerLeaf(r)) }

func peerLeaf(r *http.Request) *x509.Certificate {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return nil
	}
	return r.TLS.VerifiedChains[0][0]
}

// ErrWrongPeer is returned by the check of VerifyPeer for a peer whose
// certificate names another identity or role than the one expected.
var ErrWrongPeer = errors.New("peer certificate names another identity")

// VerifyPeer returns a tls.Config.VerifyConnection check that the peer's
// verified certificate carries role and names identity: the coordinator
// checks that the server it calls as participant "flights" is the
// participant flights, a participant that the server it asks about
// outcomes is the coordinator. It runs after the usual verification
// against the CA and the host name.
func VerifyPeer(role, identity string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate, want %s %q", ErrWrongPeer, role, identity)
		}
		leaf := cs.PeerCertificates[0]
		if got, gotRole := Identity(leaf), Role(leaf); got != identity || gotRole != role {
			return fmt.Errorf("%w: %s %q, want %s %q", ErrWrongPeer, orNone(gotRole), got, role, identity)
		}
		return nil
	}
}

func orNone(role string) string {
	if role == "" {
		return "no role"
	}
	return role
}

// ClientConfigFor is ClientConfig for calls to the peer of role named
// identity only (see VerifyPeer).
func (t *TLS) ClientConfigFor(role, identity string) *tls.Config {
	cfg := t.ClientConfig()
	cfg.VerifyConnection = VerifyPeer(role, identity)
	return cfg
}
