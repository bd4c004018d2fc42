// Package jsonfast reads and checks the restricted JSON of Concord's
// protocol fast paths without reflection.
//
// The coordinator and the services decode and encode a few messages once
// per transaction or per batch (a submit body, PREPARE and decision
// batches, the participants' answers, a reservation payload). encoding/json's
// reflection was about 15% of the coordinator's CPU, and decoding a batch of
// 16 PREPAREs took 19.4 us with it against 4.8 us by hand. So those
// messages are read and written by hand in the plain form Concord itself
// writes, and encoding/json stays the fallback for anything else.
//
// The rule for every user of this package: a fast decoder accepts only what
// the strict encoding/json decoder (DisallowUnknownFields, nothing after
// the value) accepts, as the same value, and declines the rest to it; a
// fast encoder writes byte for byte what json.Marshal writes, or declines.
// The Scanner therefore takes only plain strings (printable ASCII without
// escapes, whose decoding is their bytes), integers without fraction or
// exponent, and object keys each at most once and spelt exactly; anything
// else makes it report false. Each user has a fuzz target comparing its
// fast path with encoding/json.
package jsonfast

// Scanner reads one JSON text from the start. Its methods skip white space
// before what they read and report false when the next token is not what
// they take; the Scanner is then in no defined position and the text should
// be left to encoding/json.
type Scanner struct {
	b                []byte
	i                int
	keyStart, keyEnd int // the key of the member Object is reading
}

// NewScanner returns a Scanner reading b, which must not change while
// slices of it that the Scanner returned are in use.
func NewScanner(b []byte) Scanner { return Scanner{b: b} }

func (s *Scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// Eat consumes c if it comes next.
func (s *Scanner) Eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// End reports whether only white space is left.
func (s *Scanner) End() bool {
	s.ws()
	return s.i == len(s.b)
}

// Plain reads a string of printable ASCII without escapes and returns its
// contents, a slice of the text.
func (s *Scanner) Plain() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	j := start
	for j < len(s.b) && plainByte[s.b[j]] {
		j++
	}
	if j == len(s.b) || s.b[j] != '"' {
		return nil, false
	}
	s.i = j + 1
	return s.b[start:j], true
}

// plainByte tells the bytes of a plain string: printable ASCII but the
// quote and the backslash.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Int reads an integer of at most 18 digits (so that it fits an int64),
// without fraction or exponent.
func (s *Scanner) Int() (int64, bool) {
	s.ws()
	neg := s.i < len(s.b) && s.b[s.i] == '-'
	if neg {
		s.i++
	}
	start := s.i
	var v int64
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		v = v*10 + int64(s.b[s.i]-'0')
		s.i++
	}
	n := s.i - start
	if n == 0 || n > 18 || (n > 1 && s.b[start] == '0') {
		return 0, false
	}
	if s.i < len(s.b) {
		switch s.b[s.i] {
		case '.', 'e', 'E':
			return 0, false
		}
	}
	if neg {
		v = -v
	}
	return v, true
}

// Bool reads true or false.
func (s *Scanner) Bool() (v, ok bool) {
	switch s.peek() {
	case 't':
		return true, s.literal("true")
	case 'f':
		return false, s.literal("false")
	}
	return false, false
}

// MaxDepth bounds the nesting of a value Value takes.
const MaxDepth = 64

// Value reads one valid JSON value other than null, nested at most MaxDepth
// deep, and returns its text: a slice of the text capped at its length, so
// that appending to it cannot overwrite what follows. The value is checked
// as json.Valid checks it; its strings may hold escapes and any byte from
// 0x20 up.
func (s *Scanner) Value() ([]byte, bool) {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == 'n' || !s.value(MaxDepth) {
		return nil, false
	}
	return s.b[start:s.i:s.i], true
}

func (s *Scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *Scanner) value(depth int) bool {
	if depth <= 0 {
		return false
	}
	switch s.peek() {
	case '{':
		s.i++
		if s.Eat('}') {
			return true
		}
		for {
			if s.peek() != '"' || !s.str() || !s.Eat(':') || !s.value(depth-1) {
				return false
			}
			if s.Eat('}') {
				return true
			}
			if !s.Eat(',') {
				return false
			}
		}
	case '[':
		s.i++
		if s.Eat(']') {
			return true
		}
		for {
			if !s.value(depth - 1) {
				return false
			}
			if s.Eat(']') {
				return true
			}
			if !s.Eat(',') {
				return false
			}
		}
	case '"':
		return s.str()
	case 't':
		return s.literal("true")
	case 'f':
		return s.literal("false")
	case 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

// str reads a valid JSON string, escapes included, whose '"' is next.
func (s *Scanner) str() bool {
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			s.i++
			return true
		case c < 0x20:
			return false
		case c == '\\':
			s.i++
			if s.i >= len(s.b) {
				return false
			}
			switch s.b[s.i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if s.i+4 >= len(s.b) {
					return false
				}
				for _, h := range s.b[s.i+1 : s.i+5] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false
					}
				}
				s.i += 4
			default:
				return false
			}
		}
	}
	return false
}

func (s *Scanner) literal(word string) bool {
	if len(s.b)-s.i < len(word) || string(s.b[s.i:s.i+len(word)]) != word {
		return false
	}
	s.i += len(word)
	return true
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?.
func (s *Scanner) number() bool {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return false
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return false
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// Object reads an object, calling member once each key and its ':' are
// read; member reads the value, finds the key with Key, and returns the
// key's bit, a distinct power of two per known key. Keys must be plain,
// known (member reports false otherwise) and not repeat. (member gets no
// key argument so that nothing of the text escapes through it: a text on
// the stack stays there.)
func (s *Scanner) Object(member func() (bit uint, ok bool)) bool {
	if !s.Eat('{') {
		return false
	}
	if s.Eat('}') {
		return true
	}
	var seen uint
	for {
		key, ok := s.Plain()
		if !ok {
			return false
		}
		s.keyEnd = s.i - 1 // the closing quote
		s.keyStart = s.keyEnd - len(key)
		if !s.Eat(':') {
			return false
		}
		bit, ok := member()
		if !ok || bit == 0 || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.Eat('}') {
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// Key returns the key of the member Object is reading (a slice of the
// text); it is only meaningful inside an Object's member function, and
// there until a nested Object reads a key.
func (s *Scanner) Key() []byte { return s.b[s.keyStart:s.keyEnd] }

// Array reads an array (not null), calling elem to read each element.
func (s *Scanner) Array(elem func() bool) bool {
	if !s.Eat('[') {
		return false
	}
	if s.Eat(']') {
		return true
	}
	for {
		if !elem() {
			return false
		}
		if s.Eat(']') {
			return true
		}
		if !s.Eat(',') {
			return false
		}
	}
}

// Remaining returns the number of bytes not yet read, for sizing what the
// rest of the text can hold.
func (s *Scanner) Remaining() int { return len(s.b) - s.i }

// IsPlain reports whether json.Marshal writes s as is between quotes:
// printable ASCII other than the quote, the backslash and the characters it
// escapes for HTML (<, >, &).
func IsPlain(s string) bool {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x7f, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return false
		}
	}
	return true
}

// IsCompactPlain reports whether json.Marshal writes raw, a
// json.RawMessage, as is: empty, or one valid JSON value with no white
// space and only printable ASCII other than <, > and &.
func IsCompactPlain(raw []byte) bool {
	for _, c := range raw {
		if c <= ' ' || c >= 0x7f || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	if len(raw) == 0 {
		return true
	}
	s := NewScanner(raw)
	return s.value(MaxDepth) && s.End()
}
