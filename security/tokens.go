package security

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// ErrBadTokens is returned by ParseTokens and LoadTokens for a token file
// they cannot use; the message names the line and what is wrong.
var ErrBadTokens = errors.New("bad token file")

// MinTokenLen is the shortest token accepted: anything shorter is too easy
// to guess.
const MinTokenLen = 16

// MaxNameLen bounds a client's name in the token file.
const MaxNameLen = 64

// Tokens maps bearer tokens to the clients holding them. Lookup compares
// in constant time. A Tokens is read-only once built; it is safe for
// concurrent use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	sum      [sha256.Size]byte // of the token: every comparison has the same length
	name     string
	operator bool
}

// LoadTokens reads the token file at path (see ParseTokens).
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTokens, err)
	}
	defer f.Close()
	t, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTokens reads lines of "name token [operator]": a client's name
// (letters, digits, '.', '_', '-'; at most MaxNameLen bytes), its token (at
// least MinTokenLen printable bytes) and the word operator for a client that
// may see and act on every transaction. Blank lines and lines starting with
// '#' are skipped. A name or token given twice is an error.
func ParseTokens(r io.Reader) (*Tokens, error) {
	t := &Tokens{}
	names := map[string]int{}
	sums := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := func(format string, args ...any) error {
			return fmt.Errorf("%w: line %d: %s", ErrBadTokens, n, fmt.Sprintf(format, args...))
		}
		f := strings.Fields(line)
		if len(f) < 2 || len(f) > 3 {
			return nil, bad("want \"name token [operator]\", got %d fields", len(f))
		}
		if err := CheckName(f[0]); err != nil {
			return nil, bad("%v", err)
		}
		if len(f[1]) < MinTokenLen {
			return nil, bad("the token of %s has %d bytes, at least %d are needed", f[0], len(f[1]), MinTokenLen)
		}
		op := false
		if len(f) == 3 {
			if f[2] != "operator" {
				return nil, bad("third field %q: the only one allowed is \"operator\"", f[2])
			}
			op = true
		}
		if prev, dup := names[f[0]]; dup {
			return nil, bad("name %s already given on line %d", f[0], prev)
		}
		sum := sha256.Sum256([]byte(f[1]))
		if prev, dup := sums[sum]; dup {
			return nil, bad("the token of %s is the same as on line %d", f[0], prev)
		}
		names[f[0]], sums[sum] = n, n
		t.entries = append(t.entries, tokenEntry{sum: sum, name: f[0], operator: op})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: line %d: %v", ErrBadTokens, n+1, err)
	}
	return t, nil
}

// CheckName reports a client name that is empty, too long or holds a byte
// outside letters, digits, '.', '_' and '-'.
func CheckName(name string) error {
	if name == "" {
		return errors.New("empty name")
	}
	if len(name) > MaxNameLen {
		return fmt.Errorf("name of %d bytes, at most %d", len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("name %q: byte %d is %q; allowed are letters, digits and . _ -", name, i, c)
		}
	}
	return nil
}

// Len returns the number of tokens.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// Lookup returns the name of the client holding token and whether it is an
// operator. It compares token with every entry, in constant time, and does
// not stop at a match: how long it takes says nothing about the tokens.
func (t *Tokens) Lookup(token string) (name string, operator, ok bool) {
	if t == nil {
		return "", false, false
	}
	sum := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(sum[:], t.entries[i].sum[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false, false
	}
	e := t.entries[found]
	return e.name, e.operator, true
}

// Operators returns the names of the operator entries.
func (t *Tokens) Operators() []string {
	if t == nil {
		return nil
	}
	var out []string
	for _, e := range t.entries {
		if e.operator {
			out = append(out, e.name)
		}
	}
	return out
}
