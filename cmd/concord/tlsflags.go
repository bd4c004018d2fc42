package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/concordtx/concord/client"
	"github.com/concordtx/concord/coordinator"
	"github.com/concordtx/concord/participant"
	"github.com/concordtx/concord/security"
	"github.com/concordtx/concord/wire"
)

// tlsFlags are --tls-cert, --tls-key and --tls-ca, shared by the commands
// that serve or call Concord peers.
type tlsFlags struct {
	cert, key, ca *string
}

func addTLSFlags(fs *flag.FlagSet, who string) *tlsFlags {
	return &tlsFlags{
		cert: fs.String("tls-cert", "", "PEM certificate `file` of "+who+" (with --tls-key and --tls-ca: TLS and mutual TLS; concord certs init DIR makes development ones)"),
		key:  fs.String("tls-key", "", "PEM private key `file` of --tls-cert"),
		ca:   fs.String("tls-ca", "", "PEM `file` of the CA that signs every peer's certificate"),
	}
}

// load returns the TLS material, nil when no flag is given, or an error
// naming what is missing or wrong.
func (f *tlsFlags) load() (*security.TLS, error) {
	files := security.TLSFiles{Cert: *f.cert, Key: *f.key, CA: *f.ca}
	if !files.Enabled() {
		return nil, nil
	}
	return security.LoadTLS(files)
}

// warnPlainHTTP is the line a server without TLS prints at start.
func warnPlainHTTP(say announcer, who, addr string) {
	say.warn(fmt.Sprintf("%s serves plain HTTP on %s: no TLS, no authentication; anyone who can reach it can %s. "+
		"This is for local development only: give --tls-cert, --tls-key and --tls-ca (see concord certs init) everywhere else.",
		who, addr, map[bool]string{true: "submit, read and abort transactions", false: "prepare, commit and abort reservations"}[who == "coordinator"]),
		"server", who, "addr", addr, "tls", false)
}

// warnReadableSecret prints a WARNING line to w when the file at path (a
// private key, a token or password file) can be read by its group or by
// others: a secret that other users of the machine can read is no secret.
func warnReadableSecret(w io.Writer, what, path string) {
	if path == "" {
		return
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	fmt.Fprintf(w, "WARNING: %s %s is mode %v: readable by other users; make it 0600 (chmod 600 %s)\n", what, path, fi.Mode().Perm(), path)
}

// requireHTTPS refuses a peer URL that is not https:// when TLS is on.
func requireHTTPS(what, u string) error {
	p, err := url.Parse(u)
	if err != nil || p.Scheme != "https" {
		return fmt.Errorf("%s %s: with --tls-cert every peer is called over https://", what, u)
	}
	return nil
}

// clientAuthFlags are the flags of the commands that call the coordinator
// as a client (book, tx): a client certificate and/or a bearer token.
type clientAuthFlags struct {
	tls       *tlsFlags
	ca        *string
	tokenFile *string
}

func addClientAuthFlags(fs *flag.FlagSet) *clientAuthFlags {
	f := &clientAuthFlags{
		tokenFile: fs.String("token-file", "", "`file` holding a bearer token (first line) to authenticate with; the CONCORD_TOKEN environment variable works too"),
	}
	f.tls = &tlsFlags{
		cert: fs.String("tls-cert", "", "client certificate `file` (PEM) to authenticate to an https:// coordinator"),
		key:  fs.String("tls-key", "", "private key `file` of --tls-cert"),
		ca:   fs.String("tls-ca", "", "CA `file` the coordinator's certificate must be signed by (required for https://)"),
	}
	return f
}

// options fills the TLS and token fields of o, warning on stderr of a key
// or token file others can read.
func (f *clientAuthFlags) options(o client.Options, stderr io.Writer) (client.Options, error) {
	warnReadableSecret(stderr, "--token-file", *f.tokenFile)
	warnReadableSecret(stderr, "--tls-key", *f.tls.key)
	tok := os.Getenv("CONCORD_TOKEN")
	if *f.tokenFile != "" {
		b, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return o, fmt.Errorf("--token-file: %v", err)
		}
		tok, _, _ = strings.Cut(strings.TrimSpace(string(b)), "\n")
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return o, fmt.Errorf("--token-file %s is empty", *f.tokenFile)
		}
	}
	o.Token = tok
	switch {
	case *f.tls.cert != "" || *f.tls.key != "":
		m, err := f.tls.load()
		if err != nil {
			return o, err
		}
		o.TLS = m.ClientConfig()
	case *f.tls.ca != "":
		pem, err := os.ReadFile(*f.tls.ca)
		if err != nil {
			return o, fmt.Errorf("--tls-ca: %v", err)
		}
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if cfg.RootCAs, err = certPool(pem); err != nil {
			return o, fmt.Errorf("--tls-ca %s: %v", *f.tls.ca, err)
		}
		o.TLS = cfg
	}
	return o, nil
}

func certPool(pem []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate in it")
	}
	return pool, nil
}

// coordinatorSecurity applies the coordinator's security flags to opts:
// with TLS, HTTPS with optional client certificates (clients may use a
// token instead), mutual TLS to the participants, and authentication with
// the token file and operators; without, plain HTTP (tokens then refused:
// they would travel in the clear).
func coordinatorSecurity(opts *coordinator.Options, f *tlsFlags, tokensPath, operators string) error {
	m, err := f.load()
	if err != nil {
		return err
	}
	if m == nil {
		if tokensPath != "" || operators != "" {
			return errors.New("--client-tokens and --operators need TLS (--tls-cert, --tls-key, --tls-ca): tokens must not travel in plain HTTP")
		}
		return nil
	}
	for name, u := range opts.Participants {
		if err := requireHTTPS("--participant "+name+"=", u); err != nil {
			return err
		}
	}
	if opts.AdvertiseURL != "" {
		// Participants follow the advertised URL to learn outcomes.
		if err := requireHTTPS("--advertise", opts.AdvertiseURL); err != nil {
			return err
		}
	}
	auth := &security.Authenticator{}
	if tokensPath != "" {
		if auth.Tokens, err = security.LoadTokens(tokensPath); err != nil {
			return fmt.Errorf("--client-tokens: %w", err)
		}
	}
	for _, o := range strings.Split(operators, ",") {
		if o = strings.TrimSpace(o); o != "" {
			auth.Operators = append(auth.Operators, o)
		}
	}
	opts.TLS, opts.ClientTLS, opts.Auth = m.ServerConfig(false), m.ClientConfig(), auth
	return nil
}

// participantSecurity applies a participant's security flags: with TLS,
// HTTPS requiring a client certificate from every caller, protocol
// requests from coordinatorIdentity only, and outcome queries over mutual
// TLS to an https:// coordinator whose certificate names coordinatorIdentity. It returns the listener's TLS
// configuration, nil for plain HTTP.
func participantSecurity(opts *participant.Options, f *tlsFlags, coordinatorIdentity string) (*tls.Config, error) {
	m, err := f.load()
	if err != nil || m == nil {
		return nil, err
	}
	if coordinatorIdentity == "" {
		return nil, errors.New("--coordinator-identity is empty: with TLS the coordinator's identity must be known")
	}
	if err := requireHTTPS("--coordinator", opts.Coordinator); err != nil {
		return nil, err
	}
	if opts.HTTPClient, err = security.WithClientTLS(wire.NewHTTPClient(0), m.ClientConfigFor(security.RoleCoordinator, coordinatorIdentity)); err != nil {
		return nil, err
	}
	opts.CoordinatorIdentity = coordinatorIdentity
	return m.ServerConfig(true), nil
}
