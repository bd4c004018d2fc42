package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord/security"
)

// Under TLS the coordinator's advertise URL, which participants follow to
// learn outcomes, must be https: exit 2 naming the flag.
func TestAdvertiseMustBeHTTPSUnderTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCmd("certs", "init", dir); code != 0 {
		t.Fatalf("certs init: %s", stderr)
	}
	args := []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--participant", "flights=https://127.0.0.1:1",
		"--tls-cert", filepath.Join(dir, "coordinator.pem"), "--tls-key", filepath.Join(dir, "coordinator-key.pem"), "--tls-ca", filepath.Join(dir, "ca.pem")}
	for _, adv := range []string{"http://127.0.0.1:7070", "127.0.0.1:7070", "ftp://x"} {
		code, stderr := coordinatorExit(t, append(args, "--advertise", adv)...)
		if code != 2 || !strings.Contains(stderr, "--advertise") || !strings.Contains(stderr, "https://") {
			t.Errorf("--advertise %s under TLS: exit %d, %q; want 2", adv, code, stderr)
		}
	}
	if code, stderr := coordinatorExit(t, append(args, "--advertise", "https://127.0.0.1:7070")...); code != 0 {
		t.Errorf("--advertise https: exit %d, %q", code, stderr)
	}
}

// A key or token file that other users can read draws a WARNING at start.
func TestReadableSecretsWarn(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCmd("certs", "init", dir); code != 0 {
		t.Fatalf("certs init: %s", stderr)
	}
	key, toks := filepath.Join(dir, "coordinator-key.pem"), filepath.Join(dir, "tokens.txt")
	args := []string{"--data", t.TempDir(), "--listen", "127.0.0.1:0", "--participant", "flights=https://127.0.0.1:1",
		"--tls-cert", filepath.Join(dir, "coordinator.pem"), "--tls-key", key, "--tls-ca", filepath.Join(dir, "ca.pem"), "--client-tokens", toks}
	if code, stderr := coordinatorExit(t, args...); code != 0 || strings.Contains(stderr, "WARNING") {
		t.Fatalf("0600 files: exit %d, %q", code, stderr)
	}
	for _, p := range []string{key, toks} {
		if err := os.Chmod(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stderr := coordinatorExit(t, args...)
	if code != 0 || !strings.Contains(stderr, "WARNING: --tls-key "+key+" is mode -rw-r--r--") || !strings.Contains(stderr, "WARNING: --client-tokens "+toks) {
		t.Errorf("0644 key and tokens: exit %d, %q; want a WARNING for each", code, stderr)
	}
}

// certs init issues each certificate with its role and keeps the CA key
// apart from what is deployed.
func TestCertsInitRolesAndCAKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	code, out, stderr := runCmd("certs", "init", dir)
	if code != 0 {
		t.Fatalf("certs init: %s", stderr)
	}
	for n, role := range map[string]string{"coordinator": security.RoleCoordinator, "flights": security.RoleParticipant,
		"hotels": security.RoleParticipant, "cars": security.RoleParticipant, "client": security.RoleClient} {
		m, err := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, n+".pem"), Key: filepath.Join(dir, n+"-key.pem"), CA: filepath.Join(dir, "ca.pem")})
		if err != nil {
			t.Fatal(err)
		}
		if got := security.Role(m.Cert.Leaf); got != role {
			t.Errorf("%s: role %q, want %q", n, got, role)
		}
	}
	caKey := filepath.Join(dir, security.DevPKI.Private, "ca-key.pem")
	if _, err := os.Stat(caKey); err != nil || !strings.Contains(out, caKey) {
		t.Errorf("CA key %s: %v; output %q", caKey, err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "ca-key.pem")); err == nil {
		t.Error("the CA key lies beside the certificates")
	}
}

// pprof is unauthenticated: it serves on loopback only unless asked.
func TestPprofLoopbackOnly(t *testing.T) {
	var errb bytes.Buffer
	for _, addr := range []string{":6060", "0.0.0.0:0", "192.0.2.1:6060"} {
		errb.Reset()
		if ln := pprofListener(addr, false, &errb); ln != nil {
			ln.Close()
			t.Errorf("%s: pprof served on a non-loopback address", addr)
		}
		if !strings.Contains(errb.String(), PprofAnyEnvVar) {
			t.Errorf("%s: %q does not say how to ask", addr, errb.String())
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0"} {
		errb.Reset()
		ln := pprofListener(addr, false, &errb)
		if ln == nil {
			if strings.Contains(addr, "::1") && strings.Contains(errb.String(), "address") {
				continue // no IPv6 loopback here
			}
			t.Errorf("%s: not served: %s", addr, errb.String())
			continue
		}
		ln.Close()
	}
}

// A database password can come from a file or the environment, never
// needs the command line, and never shows in an error: a malformed store
// URL names no part of its password.
func TestStorePassword(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cr:t@/x\nignored\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := storeURLWithPassword("mysql://root@127.0.0.1:3306/db", pw, "from-env")
	if err != nil || got != "mysql://root:s3cr%3At%40%2Fx@127.0.0.1:3306/db" {
		t.Errorf("password file: %q %v", got, err)
	}
	if got, err := storeURLWithPassword("postgres://u@127.0.0.1/db", "", "from-env"); err != nil || got != "postgres://u:from-env@127.0.0.1/db" {
		t.Errorf("environment: %q %v", got, err)
	}
	if got, err := storeURLWithPassword("postgres://u@127.0.0.1/db", "", ""); err != nil || got != "postgres://u@127.0.0.1/db" {
		t.Errorf("none: %q %v", got, err)
	}
	for _, c := range []struct{ url, env string }{{"mysql://u:inline@h/db", "x"}, {"memory", "x"}, {"mysql://u:p%zzsecret@h/db", "x"}} {
		if _, err := storeURLWithPassword(c.url, "", c.env); err == nil || strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "inline") {
			t.Errorf("%s: %v", c.url, err)
		}
	}
	for _, store := range []string{"mysql://root:hunter2%zz@127.0.0.1:3306/db", "mysql://root:hunter2@127.0.0.1:3306/", "mysql://root:hunter2@127.0.0.1:3306/db?bogus%zz=1",
		"postgres://root:hunter2@127.0.0.1:5432/db?pool_max_conns=x"} {
		var out, errb lockedBuffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		code := runParticipant(ctx, []string{"--service", "flights", "--listen", "127.0.0.1:0", "--store", store}, &out, &errb)
		if code == 0 || strings.Contains(errb.String()+out.String(), "hunter2") {
			t.Errorf("--store %s: exit %d, output shows the password: %q", store, code, errb.String())
		}
	}
}
