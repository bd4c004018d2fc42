package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
)

// Identity is the identity a certificate names: its subject common name,
// or when that is empty its first DNS subject alternative name. The
// coordinator's certificate names "coordinator" (or whatever participants
// are configured to expect), a participant's names the participant, a
// client's names the client.
func Identity(cert *x509.Certificate) string {
	if cert == nil {
		return ""
	}
	if cert.Subject.CommonName != "" {
		return cert.Subject.CommonName
	}
	if len(cert.DNSNames) > 0 {
		return cert.DNSNames[0]
	}
	return ""
}

// PeerIdentity returns the identity of the verified client certificate r
// came with, and false when r came over plain HTTP or without a
// certificate that verified against the configured CA.
func PeerIdentity(r *http.Request) (string, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return "", false
	}
	id := Identity(r.TLS.VerifiedChains[0][0])
	return id, id != ""
}

// ErrWrongPeer is returned by the check of VerifyPeer for a peer whose
// certificate names another identity than the one expected.
var ErrWrongPeer = errors.New("peer certificate names another identity")

// VerifyPeer returns a tls.Config.VerifyConnection check that the peer's
// verified certificate names identity: the coordinator checks that the
// server it calls as participant "flights" is flights, a participant that
// the server it asks about outcomes is the coordinator. It runs after the
// usual verification against the CA and the host name.
func VerifyPeer(identity string) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return fmt.Errorf("%w: no certificate, want %q", ErrWrongPeer, identity)
		}
		if got := Identity(cs.PeerCertificates[0]); got != identity {
			return fmt.Errorf("%w: %q, want %q", ErrWrongPeer, got, identity)
		}
		return nil
	}
}

// ClientConfigFor is ClientConfig for calls to the peer named identity
// only (see VerifyPeer).
func (t *TLS) ClientConfigFor(identity string) *tls.Config {
	cfg := t.ClientConfig()
	cfg.VerifyConnection = VerifyPeer(identity)
	return cfg
}
