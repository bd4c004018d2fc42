package security

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Lifetimes of the development certificates.
const (
	DevCALifetime   = 5 * 365 * 24 * time.Hour
	DevCertLifetime = 365 * 24 * time.Hour
)

// DevCA is a development certificate authority: an ECDSA P-256 key and a
// self-signed CA certificate. It is for local setups and tests; production
// uses certificates from a real authority.
type DevCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	CertPEM []byte // the CA certificate, PEM encoded
	KeyPEM  []byte // the CA key, PEM encoded (PKCS #8)
}

// NewDevCA creates a CA named cn, valid from an hour before now.
func NewDevCA(cn string, now time.Time) (*DevCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Concord development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(DevCALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &DevCA{cert: cert, key: key, CertPEM: pemBlock("CERTIFICATE", der), KeyPEM: keyPEM}, nil
}

// Issue signs a certificate naming name (the identity: common name) with
// SANs for localhost, 127.0.0.1 and ::1. A server certificate serves and
// calls peers (coordinator, participants); a client one only calls.
func (ca *DevCA) Issue(name string, server bool, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key of %s: %w", name, err)
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		usage = append(usage, x509.ExtKeyUsageServerAuth)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: name, Organization: []string{"Concord development"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(DevCertLifetime),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  usage,
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, nil, fmt.Errorf("sign certificate of %s: %w", name, err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemBlock("CERTIFICATE", der), keyPEM, nil
}

// DevPKI is what WriteDevPKI writes into a directory: for each name, the
// files NAME.pem (certificate) and NAME-key.pem (key).
var DevPKI = struct {
	CA       string   // the CA's file name stem
	Servers  []string // coordinator and the three travel services
	Client   string   // one client
	Operator string   // the operator named in the token file
	Tokens   string   // the token file
}{CA: "ca", Servers: []string{"coordinator", "flights", "hotels", "cars"}, Client: "client", Operator: "operator", Tokens: "tokens.txt"}

// ErrExists is returned by WriteDevPKI when a file it would write exists.
var ErrExists = errors.New("file exists")

// WriteDevPKI creates a development CA in dir and certificates for the
// coordinator, the three services and one client, plus a token file
// giving the client and an operator random bearer tokens. It refuses to
// overwrite any file unless force is set. Keys are written mode 0600. It
// returns the paths written.
func WriteDevPKI(dir string, force bool, now time.Time) ([]string, error) {
	names := append([]string{DevPKI.CA}, DevPKI.Servers...)
	names = append(names, DevPKI.Client)
	var paths []string
	for _, n := range names {
		paths = append(paths, filepath.Join(dir, n+".pem"), filepath.Join(dir, n+"-key.pem"))
	}
	paths = append(paths, filepath.Join(dir, DevPKI.Tokens))
	if !force {
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%w: %s (use --force to replace it)", ErrExists, p)
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	ca, err := NewDevCA("Concord development CA", now)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		filepath.Join(dir, DevPKI.CA+".pem"):     ca.CertPEM,
		filepath.Join(dir, DevPKI.CA+"-key.pem"): ca.KeyPEM,
	}
	for _, n := range append(append([]string{}, DevPKI.Servers...), DevPKI.Client) {
		c, k, err := ca.Issue(n, n != DevPKI.Client, now)
		if err != nil {
			return nil, err
		}
		files[filepath.Join(dir, n+".pem")] = c
		files[filepath.Join(dir, n+"-key.pem")] = k
	}
	files[filepath.Join(dir, DevPKI.Tokens)] = []byte(fmt.Sprintf(
		"# Bearer tokens: name token [operator]. Keep this file secret.\n%s %s\n%s %s operator\n",
		DevPKI.Client, randomToken(), DevPKI.Operator, randomToken()))
	for _, p := range paths {
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".txt" || len(p) > 8 && p[len(p)-8:] == "-key.pem" {
			mode = 0o600
		}
		if err := writeFile(p, files[p], mode); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// writeFile replaces p with b through a synced temporary file.
func writeFile(p string, b []byte, mode os.FileMode) error {
	tmp := p + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pemBlock("PRIVATE KEY", der), nil
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // crypto/rand does not fail on supported systems
	}
	return n
}

func randomToken() string {
	var b [24]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
