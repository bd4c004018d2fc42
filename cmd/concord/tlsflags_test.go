package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// waitServing runs a server command in the background until the test ends
// and returns the base URL its serving line names.
func waitServing(t *testing.T, run func(ctx context.Context, out, errb *lockedBuffer) int, scheme string) (string, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb lockedBuffer
	exit := make(chan int, 1)
	go func() { exit <- run(ctx, &out, &errb) }()
	t.Cleanup(func() {
		cancel()
		<-exit
	})
	re := regexp.MustCompile(`serving on (` + scheme + `://127\.0\.0\.1:\d+)`)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m[1], &errb
		}
		select {
		case code := <-exit:
			t.Fatalf("exited %d before serving; stdout %q stderr %q", code, out.String(), errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no serving line; stdout %q stderr %q", out.String(), errb.String())
		}
		time.Sleep(time.Millisecond) // a server starting: nothing to wait on but its output
	}
}

// The README's secure walkthrough: certs init, a participant and the
// coordinator with their certificates, then booking with a client
// certificate or a token; without either the booking is refused.
func TestSecureWalkthrough(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCmd("certs", "init", dir); code != 0 {
		t.Fatalf("certs init: %s", stderr)
	}
	f := func(name string) []string {
		return []string{"--tls-cert", filepath.Join(dir, name+".pem"), "--tls-key", filepath.Join(dir, name+"-key.pem"), "--tls-ca", filepath.Join(dir, "ca.pem")}
	}
	flights, perr := waitServing(t, func(ctx context.Context, out, errb *lockedBuffer) int {
		return runParticipant(ctx, append([]string{"--service", "flights", "--listen", "127.0.0.1:0", "--store", "memory",
			"--coordinator", "https://127.0.0.1:1"}, f("flights")...), out, errb)
	}, "https")
	coord, cerr := waitServing(t, func(ctx context.Context, out, errb *lockedBuffer) int {
		return runCoordinator(ctx, append([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(),
			"--participant", "flights=" + flights, "--client-tokens", filepath.Join(dir, "tokens.txt")}, f("coordinator")...), out, errb)
	}, "https")
	if strings.Contains(perr.String()+cerr.String(), "WARNING") {
		t.Errorf("a TLS server warned: %s %s", perr.String(), cerr.String())
	}

	code, stdout, stderr := runCmd(append([]string{"book", "--coordinator", coord, "--flight", "FL100", "--id", "by-cert"}, f("client")...)...)
	if code != 0 || !strings.Contains(stdout, "committed") {
		t.Fatalf("book with a client certificate: exit %d: %s %s", code, stdout, stderr)
	}
	toks, _ := os.ReadFile(filepath.Join(dir, "tokens.txt"))
	var token string
	for _, l := range strings.Split(string(toks), "\n") {
		if fields := strings.Fields(l); len(fields) == 2 && fields[0] == "client" {
			token = fields[1]
		}
	}
	tokFile := filepath.Join(t.TempDir(), "token")
	os.WriteFile(tokFile, []byte(token+"\n"), 0o600)
	ca := filepath.Join(dir, "ca.pem")
	code, stdout, stderr = runCmd("book", "--coordinator", coord, "--tls-ca", ca, "--token-file", tokFile, "--flight", "FL200", "--id", "by-token")
	if code != 0 || !strings.Contains(stdout, "committed") {
		t.Fatalf("book with a token: exit %d: %s %s", code, stdout, stderr)
	}
	// Both bookings are the client's: it lists them.
	code, stdout, stderr = runCmd(append([]string{"tx", "list", "--state", "all", "--coordinator", coord}, f("client")...)...)
	if code != 0 || !strings.Contains(stdout, "by-cert") || !strings.Contains(stdout, "by-token") {
		t.Errorf("tx list as the client: exit %d: %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = runCmd("book", "--coordinator", coord, "--tls-ca", ca, "--flight", "FL100", "--id", "nobody")
	if code != 2 || !strings.Contains(stdout+stderr, "401") {
		t.Errorf("book without credentials: exit %d: %s %s", code, stdout, stderr)
	}
	// A client certificate posing as the coordinator: the participant
	// refuses its prepare.
	cl, err := security.LoadTLS(security.TLSFiles{Cert: filepath.Join(dir, "client.pem"), Key: filepath.Join(dir, "client-key.pem"), CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	hc, _ := security.WithClientTLS(&http.Client{Timeout: 10 * time.Second}, cl.ClientConfig())
	resp, err := hc.Post(flights+wire.PathPrepare, "application/json", strings.NewReader(`{"transactions":[{"id":"forged","payload":{"sku":"FL100","quantity":1}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("prepare from a client certificate: %d, want 403", resp.StatusCode)
	}
}

func TestPlainHTTPWarns(t *testing.T) {
	flights, perr := waitServing(t, func(ctx context.Context, out, errb *lockedBuffer) int {
		return runParticipant(ctx, []string{"--service", "flights", "--listen", "127.0.0.1:0", "--store", "memory"}, out, errb)
	}, "http")
	_, cerr := waitServing(t, func(ctx context.Context, out, errb *lockedBuffer) int {
		return runCoordinator(ctx, []string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--participant", "flights=" + flights}, out, errb)
	}, "http")
	for who, s := range map[string]string{"participant": perr.String(), "coordinator": cerr.String()} {
		if !strings.Contains(s, "WARNING") || !strings.Contains(s, "plain HTTP") {
			t.Errorf("%s did not warn: %q", who, s)
		}
	}
	// The participant's header limit: 431, and the next request is served.
	req, _ := http.NewRequest("GET", flights+wire.PathHealth, nil)
	req.Header.Set("X-Big", strings.Repeat("h", 128<<10))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("participant, big header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if resp, err := http.Get(flights + wire.PathHealth); err != nil || resp.StatusCode != 200 {
		t.Errorf("participant after a big header: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestSecurityFlagErrors(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	if code, _, stderr := runCmd("certs", "init", dir); code != 0 {
		t.Fatalf("certs init: %s", stderr)
	}
	cert, key, ca := filepath.Join(dir, "coordinator.pem"), filepath.Join(dir, "coordinator-key.pem"), filepath.Join(dir, "ca.pem")
	data := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tls-cert", cert, "--tls-ca", ca}, "no key file (--tls-key)"},
		{[]string{"--tls-cert", cert, "--tls-key", key}, "no CA file (--tls-ca)"},
		{[]string{"--tls-cert", cert, "--tls-key", filepath.Join(dir, "flights-key.pem"), "--tls-ca", ca}, "does not match"},
		{[]string{"--client-tokens", filepath.Join(dir, "tokens.txt")}, "need TLS"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--client-tokens", cert}, "--client-tokens"},
		{[]string{"--tls-cert", cert, "--tls-key", key, "--tls-ca", ca, "--participant", "hotels=http://127.0.0.1:2"}, "over https://"},
	} {
		args := append([]string{"--data", data, "--participant", "flights=https://127.0.0.1:1"}, c.args...)
		if strings.Contains(strings.Join(c.args, " "), "hotels=") {
			args = append([]string{"--data", data}, c.args...)
		}
		code, stderr := coordinatorExit(t, args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	var out, errb lockedBuffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	code := runParticipant(ctx, []string{"--service", "flights", "--store", "memory", "--coordinator", "http://127.0.0.1:1",
		"--tls-cert", filepath.Join(dir, "flights.pem"), "--tls-key", filepath.Join(dir, "flights-key.pem"), "--tls-ca", ca}, &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "over https://") {
		t.Errorf("participant with an http:// coordinator under TLS: exit %d, %q", code, errb.String())
	}
}
