package security_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/concordtx/concord/security"
)

// Any token file either parses, and then every client it names is found by
// its token, or is refused with ErrBadTokens; never a panic.
func FuzzParseTokens(f *testing.F) {
	f.Add([]byte("alice 0123456789abcdef0123\nbob fedcba9876543210fedc operator\n"))
	f.Add([]byte("# c\n\n alice\t0123456789abcdef0123 \r\n"))
	f.Add([]byte("alice short\n"))
	f.Add([]byte("a b c d\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		toks, err := security.ParseTokens(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, security.ErrBadTokens) {
				t.Fatalf("error %v does not wrap ErrBadTokens", err)
			}
			return
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			fields := bytes.Fields(line)
			if len(fields) < 2 || fields[0][0] == '#' {
				continue
			}
			name, op, ok := toks.Lookup(string(fields[1]))
			if !ok || name != string(fields[0]) || op != (len(fields) == 3) {
				t.Fatalf("line %q: Lookup = %q %v %v", line, name, op, ok)
			}
		}
	})
}
