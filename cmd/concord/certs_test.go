package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/concordtx/concord/security"
)

func TestCertsInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	var out, errb bytes.Buffer
	if code := run([]string{"certs", "init", dir}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, n := range []string{"coordinator", "flights", "hotels", "cars", "client"} {
		m, err := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, n+".pem"), Key: filepath.Join(dir, n+"-key.pem"), CA: filepath.Join(dir, "ca.pem")})
		if err != nil || m.Identity != n {
			t.Errorf("%s: %v (identity %v)", n, err, m)
		}
	}
	if !strings.Contains(out.String(), "--tls-cert "+filepath.Join(dir, "coordinator.pem")) {
		t.Errorf("output does not show how to start the coordinator:\n%s", out.String())
	}
	before, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	out.Reset()
	errb.Reset()
	if code := run([]string{"certs", "init", dir}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "ca.pem") || !strings.Contains(errb.String(), "--force") {
		t.Errorf("second init: exit %d, stderr %q", code, errb.String())
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "ca.pem")); !bytes.Equal(before, after) {
		t.Error("a refused init changed the CA")
	}
	if code := run([]string{"certs", "init", "--force", dir}, &out, &errb); code != 0 {
		t.Errorf("--force: exit %d", code)
	}
	for _, args := range [][]string{{"certs"}, {"certs", "make", dir}, {"certs", "init"}, {"certs", "init", "a", "b"}, {"certs", "init", "--bogus", dir}} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 || errb.Len() == 0 {
			t.Errorf("%v: exit %d, stderr %q", args, code, errb.String())
		}
	}
}
