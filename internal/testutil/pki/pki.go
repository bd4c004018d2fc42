// Package pki gives tests a throwaway certificate authority and the
// certificates, files and TLS configurations issued by it.
package pki

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/concordtx/concord/security"
)

// PKI is a development CA whose files live in a test's temporary directory.
type PKI struct {
	Dir string
	CA  *security.DevCA
	t   testing.TB
}

// New creates a CA (named name) for t.
func New(t testing.TB, name string) *PKI {
	t.Helper()
	ca, err := security.NewDevCA(name, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	return &PKI{Dir: dir, CA: ca, t: t}
}

// Files issues a certificate for identity name and returns its files with
// the CA's. A server certificate (usable to serve as well as to call) is in
// role coordinator when name is "coordinator", participant otherwise; any
// other is in role client. FilesRole names the role.
func (p *PKI) Files(name string, server bool) security.TLSFiles {
	p.t.Helper()
	role := security.RoleClient
	switch {
	case server && name == "coordinator":
		role = security.RoleCoordinator
	case server:
		role = security.RoleParticipant
	}
	return p.FilesRole(name, role)
}

// FilesRole issues a certificate for identity name in role and returns its
// files with the CA's.
func (p *PKI) FilesRole(name, role string) security.TLSFiles {
	p.t.Helper()
	c, k, err := p.CA.Issue(name, role, time.Now())
	if err != nil {
		p.t.Fatal(err)
	}
	f := security.TLSFiles{Cert: filepath.Join(p.Dir, name+".pem"), Key: filepath.Join(p.Dir, name+"-key.pem"), CA: filepath.Join(p.Dir, "ca.pem")}
	if err := os.WriteFile(f.Cert, c, 0o644); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(f.Key, k, 0o600); err != nil {
		p.t.Fatal(err)
	}
	return f
}

// Load issues a certificate for name (see Files) and loads it.
func (p *PKI) Load(name string, server bool) *security.TLS {
	p.t.Helper()
	m, err := security.LoadTLS(p.Files(name, server))
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}

// LoadRole issues a certificate for name in role and loads it.
func (p *PKI) LoadRole(name, role string) *security.TLS {
	p.t.Helper()
	m, err := security.LoadTLS(p.FilesRole(name, role))
	if err != nil {
		p.t.Fatal(err)
	}
	return m
}
