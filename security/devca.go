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
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"software.sslmate.com/src/go-pkcs12"
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

// Issue signs a certificate naming name (the identity: common name) in
// role (RoleCoordinator, RoleParticipant or RoleClient, marked by the URI
// SAN RoleURIPrefix+role) with SANs for localhost, 127.0.0.1 and ::1. A
// coordinator or participant certificate serves and calls peers; a client
// one only calls.
func (ca *DevCA) Issue(name, role string, now time.Time) (certPEM, keyPEM []byte, err error) {
	if role != RoleCoordinator && role != RoleParticipant && role != RoleClient {
		return nil, nil, fmt.Errorf("certificate of %s: unknown role %q", name, role)
	}
	roleURI, err := url.Parse(RoleURIPrefix + role)
	if err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("generate key of %s: %w", name, err)
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if role != RoleClient {
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
		URIs:         []*url.URL{roleURI},
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
// files NAME.pem (certificate) and NAME-key.pem (key), except the CA's key,
// which goes to the subdirectory Private: it signs certificates and is
// never deployed with them.
var DevPKI = struct {
	Private  string   // the subdirectory (mode 0700) of the CA's key
	CA       string   // the CA's file name stem
	Servers  []string // coordinator and the three travel services
	Client   string   // one client
	Operator string   // the operator named in the token file
	Tokens   string   // the token file
	// P12Password is the file holding the password of the PKCS #12
	// bundles (NAME.p12) made for the client and the operator, for a
	// browser to import.
	P12Password string
}{Private: "ca-private", CA: "ca", Servers: []string{"coordinator", "flights", "hotels", "cars"}, Client: "client", Operator: "operator", Tokens: "tokens.txt", P12Password: "p12-password.txt"}

// PKCS12 bundles a certificate and key this CA issued (PEM, as Issue
// returns them) with the CA certificate into a PKCS #12 file protected by
// password (AES-256-CBC with PBKDF2, HMAC-SHA-256: go-pkcs12's
// Modern2023, which current browsers and OpenSSL 3 import).
func (ca *DevCA) PKCS12(certPEM, keyPEM []byte, password string) ([]byte, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, errors.New("pkcs12: certificate or key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pkcs12: %w", err)
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("pkcs12: %w", err)
	}
	return pkcs12.Modern2023.Encode(key, cert, []*x509.Certificate{ca.cert}, password)
}

// ErrExists is returned by WriteDevPKI when a file it would write exists.
var ErrExists = errors.New("file exists")

// WriteDevPKI creates a development CA in dir and certificates for the
// coordinator (role coordinator), the three services (role participant)
// and one client (role client), plus a token file giving the client and an
// operator random bearer tokens. The client and the operator (role client,
// named as in the token file, which makes it an operator) also get a
// PKCS #12 bundle, NAME.p12, for a browser to import, protected by the
// random password in DevPKI.P12Password. The CA's key goes to dir/ca-private/, apart
// from what is deployed. It refuses to overwrite any file unless force is
// set. Directories are made mode 0700, keys and tokens written mode 0600
// through temporary files of os.CreateTemp (so a planted NAME.tmp symlink
// is never followed). It returns the paths written.
func WriteDevPKI(dir string, force bool, now time.Time) ([]string, error) {
	private := filepath.Join(dir, DevPKI.Private)
	caKey := filepath.Join(private, DevPKI.CA+"-key.pem")
	paths := []string{filepath.Join(dir, DevPKI.CA+".pem"), caKey}
	for _, n := range devNames() {
		paths = append(paths, filepath.Join(dir, n+".pem"), filepath.Join(dir, n+"-key.pem"))
	}
	paths = append(paths, filepath.Join(dir, DevPKI.Client+".p12"), filepath.Join(dir, DevPKI.Operator+".p12"),
		filepath.Join(dir, DevPKI.P12Password), filepath.Join(dir, DevPKI.Tokens))
	if !force {
		for _, p := range paths {
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("%w: %s (use --force to replace it)", ErrExists, p)
			}
		}
	}
	for _, d := range []string{dir, private} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if err := os.Chmod(private, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", private, err)
	}
	ca, err := NewDevCA("Concord development CA", now)
	if err != nil {
		return nil, err
	}
	files := map[string][]byte{
		filepath.Join(dir, DevPKI.CA+".pem"): ca.CertPEM,
		caKey:                                ca.KeyPEM,
	}
	p12pass := randomToken()
	files[filepath.Join(dir, DevPKI.P12Password)] = []byte(p12pass + "\n")
	for _, n := range devNames() {
		role := RoleParticipant
		switch n {
		case DevPKI.Client, DevPKI.Operator:
			role = RoleClient
		case "coordinator":
			role = RoleCoordinator
		}
		c, k, err := ca.Issue(n, role, now)
		if err != nil {
			return nil, err
		}
		files[filepath.Join(dir, n+".pem")] = c
		files[filepath.Join(dir, n+"-key.pem")] = k
		if role == RoleClient {
			p12, err := ca.PKCS12(c, k, p12pass)
			if err != nil {
				return nil, err
			}
			files[filepath.Join(dir, n+".p12")] = p12
		}
	}
	files[filepath.Join(dir, DevPKI.Tokens)] = []byte(fmt.Sprintf(
		"# Bearer tokens: name token [operator]. Keep this file secret.\n%s %s\n%s %s operator\n",
		DevPKI.Client, randomToken(), DevPKI.Operator, randomToken()))
	for _, p := range paths {
		mode := os.FileMode(0o644)
		if filepath.Ext(p) == ".txt" || filepath.Ext(p) == ".p12" || strings.HasSuffix(p, "-key.pem") {
			mode = 0o600
		}
		if err := writeFile(p, files[p], mode); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// devNames are the identities WriteDevPKI issues certificates to.
func devNames() []string {
	return append(append([]string{}, DevPKI.Servers...), DevPKI.Client, DevPKI.Operator)
}

// writeFile replaces p with b through a synced temporary file that
// os.CreateTemp creates (O_EXCL, a random name, mode 0600 until chmod):
// never through a path an attacker could have planted.
func writeFile(p string, b []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(p), "."+filepath.Base(p)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	tmp := f.Name()
	err = f.Chmod(mode)
	if err == nil {
		_, err = f.Write(b)
	}
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
