package security

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
)

// ErrBadTLSFiles is returned by LoadTLS for missing or unusable certificate,
// key or CA files; the message names the file and what is wrong.
var ErrBadTLSFiles = errors.New("bad TLS files")

// TLSFiles names the PEM files of one service: its certificate chain, its
// private key and the certificate authority that signs its peers.
type TLSFiles struct {
	Cert, Key, CA string
}

// Enabled reports whether any of the files is named.
func (f TLSFiles) Enabled() bool { return f.Cert != "" || f.Key != "" || f.CA != "" }

// TLS is loaded TLS material: a certificate with its key, and the pool of
// the authority every peer must be signed by.
type TLS struct {
	Cert tls.Certificate
	CAs  *x509.CertPool
	// Identity is the identity the service's own certificate names.
	Identity string
}

// LoadTLS reads f. All three files are required; an error names the one
// that is missing or wrong.
func LoadTLS(f TLSFiles) (*TLS, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTLSFiles, fmt.Sprintf(format, args...))
	}
	switch {
	case f.Cert == "":
		return nil, bad("no certificate file (--tls-cert)")
	case f.Key == "":
		return nil, bad("no key file (--tls-key)")
	case f.CA == "":
		return nil, bad("no CA file (--tls-ca): peers cannot be verified without it")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, bad("certificate %s with key %s: %v", f.Cert, f.Key, err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, bad("certificate %s: %v", f.Cert, err)
	}
	cert.Leaf = leaf
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, bad("CA file: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, bad("CA file %s holds no PEM certificate", f.CA)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return nil, bad("certificate %s is not signed by the CA in %s: %v", f.Cert, f.CA, err)
	}
	return &TLS{Cert: cert, CAs: pool, Identity: Identity(leaf)}, nil
}

// ServerConfig is the configuration of a listener. With requireClientCert
// every peer must present a certificate signed by the CA (participants:
// only the coordinator and operators talk to them); without it a client
// may instead authenticate with a bearer token, but a certificate it
// presents must still verify. TLS 1.2 is the oldest version accepted.
func (t *TLS) ServerConfig(requireClientCert bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClientCert {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Cert},
		ClientCAs:    t.CAs,
		ClientAuth:   auth,
	}
}

// ClientConfig is the configuration of calls to peers: the service's own
// certificate is presented, and the peer's must be signed by the CA and
// name the host called (127.0.0.1 or localhost for the development
// certificates).
func (t *TLS) ClientConfig() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{t.Cert},
		RootCAs:      t.CAs,
	}
}

// WithClientTLS returns a copy of hc whose transport uses cfg for HTTPS,
// refuses plain http (ErrPlainHTTP: under TLS nothing is sent or followed
// in the clear) and follows no redirect (ErrRedirect). hc's transport must
// be an *http.Transport (or nil, for the default one), or one WithClientTLS
// made.
func WithClientTLS(hc *http.Client, cfg *tls.Config) (*http.Client, error) {
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	case httpsOnly:
		tr = t.base.Clone()
	default:
		return nil, fmt.Errorf("security: cannot set TLS on an HTTP transport of type %T", hc.Transport)
	}
	tr.TLSClientConfig = cfg
	c := *hc
	c.Transport = httpsOnly{tr}
	c.CheckRedirect = NoRedirects
	return &c, nil
}

// ErrRedirect is returned by NoRedirects.
var ErrRedirect = errors.New("refused to follow a redirect")

// NoRedirects is an http.Client.CheckRedirect that follows none: a peer
// that answers a redirect could send the request, and its credentials, to
// a server of its choosing.
func NoRedirects(req *http.Request, _ []*http.Request) error {
	return fmt.Errorf("%w to %s", ErrRedirect, req.URL.Redacted())
}

// httpsOnly carries https requests only.
type httpsOnly struct{ base *http.Transport }

func (h httpsOnly) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, fmt.Errorf("%w: %s %s", ErrPlainHTTP, req.Method, req.URL.Redacted())
	}
	return h.base.RoundTrip(req)
}

// CloseIdleConnections closes the idle connections of the transport.
func (h httpsOnly) CloseIdleConnections() { h.base.CloseIdleConnections() }
