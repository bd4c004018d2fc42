package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/concordtx/concord/security"
)

func init() {
	register("certs", "create development TLS certificates and tokens (certs init DIR)", runCerts)
}

// runCerts is `concord certs init DIR`: a development CA and certificates
// for the coordinator, the three services and one client, plus a token file.
func runCerts(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("concord certs init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	force := fs.Bool("force", false, "replace files that exist already")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: concord certs init [--force] DIR")
		fmt.Fprintln(stderr, "Creates a development CA (ECDSA P-256) in DIR, its key apart in DIR/ca-private/, and")
		fmt.Fprintln(stderr, "certificates for the coordinator (role spiffe://concord/coordinator), flights, hotels,")
		fmt.Fprintln(stderr, "cars (spiffe://concord/participant), a client and an operator (spiffe://concord/client),")
		fmt.Fprintln(stderr, "SANs 127.0.0.1, ::1, localhost, a token file with bearer tokens for the client and the")
		fmt.Fprintln(stderr, "operator, and client.p12 and operator.p12 (PKCS #12, password in p12-password.txt) for a")
		fmt.Fprintln(stderr, "browser to import. For local setups only.")
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "init" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fs.Usage()
			return 0
		}
		fs.Usage()
		if len(args) > 0 {
			fmt.Fprintf(stderr, "concord certs: unknown subcommand %q; the only one is init\n", args[0])
		}
		return 2
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 1 {
		fmt.Fprintln(stderr, "concord certs init: want exactly one directory argument")
		return 2
	}
	dir := fs.Arg(0)
	paths, err := security.WriteDevPKI(dir, *force, time.Now())
	if err != nil {
		fmt.Fprintf(stderr, "concord certs init: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a development CA and %d files to %s:\n", len(paths), dir)
	for _, p := range paths {
		fmt.Fprintf(stdout, "  %s\n", p)
	}
	c := func(name string) string {
		return fmt.Sprintf("--tls-cert %s --tls-key %s --tls-ca %s",
			filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem"), filepath.Join(dir, "ca.pem"))
	}
	fmt.Fprintln(stdout, "start the services with their certificates, for example:")
	fmt.Fprintf(stdout, "  concord coordinator --listen 127.0.0.1:7070 --data data/coordinator %s --client-tokens %s \\\n", c("coordinator"), filepath.Join(dir, security.DevPKI.Tokens))
	fmt.Fprintln(stdout, "    --participant flights=https://127.0.0.1:7071 --participant hotels=https://127.0.0.1:7072 --participant cars=https://127.0.0.1:7073")
	fmt.Fprintf(stdout, "  concord participant --service flights --coordinator https://127.0.0.1:7070 %s\n", c("flights"))
	fmt.Fprintf(stdout, "  concord book --coordinator https://127.0.0.1:7070 %s --flight FL100\n", c("client"))
	fmt.Fprintf(stdout, "the console (https://127.0.0.1:7070/ui/): sign in with the operator's token from %s, or import\n", filepath.Join(dir, security.DevPKI.Tokens))
	fmt.Fprintf(stdout, "  %s into the browser with the password in %s (docs/security.md)\n",
		filepath.Join(dir, security.DevPKI.Operator+".p12"), filepath.Join(dir, security.DevPKI.P12Password))
	fmt.Fprintf(stdout, "keys, .p12 files and the .txt files are secret (mode 0600); the CA key %s signs certificates and is never deployed;\n",
		filepath.Join(dir, security.DevPKI.Private, security.DevPKI.CA+"-key.pem"))
	fmt.Fprintln(stdout, "these certificates are for development only")
	return 0
}
