package security

import (
	"crypto/x509"
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
