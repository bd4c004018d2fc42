package coordinator

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// appendCanonical appends the canonical form of the JSON text src to dst,
// the form in which two payloads are "the same request" (docs/protocol.md):
//
//   - no white space outside strings;
//   - object members sorted by key (the bytes of the key once its escapes
//     are decoded); an object repeating a key has no canonical form;
//   - strings with their escapes decoded, then written with only '"', '\'
//     and the control characters escaped (as \u00xx);
//   - numbers by their exact decimal value: -0 as 0, 1.0 and 10e-1 as 1,
//     100 and 1e2 as 100 (the digits without trailing zeros, followed by
//     the zeros when there are at most 21 digits in all, else "e" and the
//     exponent);
//   - arrays in their order, literals as they are.
//
// ok is false (and dst unspecified) for an invalid text, a repeated key, a
// lone surrogate escape, an exponent of more than 9 digits or a nesting
// deeper than 512: such a payload is compared byte for byte.
func appendCanonical(dst, src []byte) (_ []byte, ok bool) {
	p := canonParser{src: src, out: dst[len(dst):cap(dst)]}
	if p.canonical() {
		return dst[:len(dst)+p.n], true
	}
	if !p.full {
		return dst, false
	}
	// Too long for dst's room: once more into a buffer that fits (the
	// canonical form of a number can be longer than its text: 1e20).
	buf := make([]byte, len(dst), len(dst)+6*len(src)+64)
	copy(buf, dst)
	p = canonParser{src: src, out: buf[len(dst):cap(buf)]}
	if p.canonical() {
		return buf[:len(dst)+p.n], true
	}
	return dst, false
}

// canonical writes the canonical form of src into out.
func (p *canonParser) canonical() bool {
	p.ws()
	ok := p.value(0)
	p.ws()
	return ok && p.i == len(p.src) && !p.full
}

// put, puts and putString write into out, noting when it is full.
func (p *canonParser) put(c byte) {
	if p.n < len(p.out) {
		p.out[p.n] = c
		p.n++
	} else {
		p.full = true
	}
}

func (p *canonParser) puts(b []byte) {
	if len(b) <= len(p.out)-p.n {
		p.n += copy(p.out[p.n:], b)
	} else {
		p.full = true
	}
}

func (p *canonParser) putString(s string) {
	if len(s) <= len(p.out)-p.n {
		p.n += copy(p.out[p.n:], s)
	} else {
		p.full = true
	}
}

// canonParser reads src from i and writes to out[:n]; full is set when
// out had no room. (out is written into, never appended to or assigned
// anew: a slice stored through the parser's pointer would make escape
// analysis move a caller's buffer on the stack to the heap.)
type canonParser struct {
	src  []byte
	i    int
	out  []byte
	n    int
	full bool
}

const maxCanonDepth = 512

func (p *canonParser) ws() {
	for p.i < len(p.src) {
		switch p.src[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *canonParser) value(depth int) bool {
	if p.i >= len(p.src) || depth > maxCanonDepth {
		return false
	}
	switch c := p.src[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		p.i++
		p.put('[')
		p.ws()
		if p.i < len(p.src) && p.src[p.i] == ']' {
			p.i++
			p.put(']')
			return true
		}
		for {
			p.ws()
			if !p.value(depth + 1) {
				return false
			}
			p.ws()
			if p.i >= len(p.src) {
				return false
			}
			switch p.src[p.i] {
			case ',':
				p.i++
				p.put(',')
			case ']':
				p.i++
				p.put(']')
				return true
			default:
				return false
			}
		}
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(p.src)-p.i >= len(lit) && string(p.src[p.i:p.i+len(lit)]) == lit {
			p.i += len(lit)
			p.putString(lit)
			return true
		}
	}
	return false
}

// member is one object member: the span of its key (quotes included) in
// the source and of its canonical "key:value" in the output.
type member struct {
	key, out [2]int
	plain    bool // the key has no escape: its bytes are its value
}

// object appends the canonical form of the object at p.i: its members are
// written in their order, then, if their keys are not in order, moved.
func (p *canonParser) object(depth int) bool {
	p.i++               // past '{'
	var room [16]member // a usual object's, on the stack
	ms := room[:0]
	base := p.n
	p.put('{')
	p.ws()
	if p.i < len(p.src) && p.src[p.i] == '}' {
		p.i++
		p.put('}')
		return true
	}
	for {
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != '"' {
			return false
		}
		m := member{key: [2]int{p.i, 0}, out: [2]int{p.n, 0}}
		if !p.str() {
			return false
		}
		m.key[1] = p.i
		m.plain = bytes.IndexByte(p.src[m.key[0]:m.key[1]], '\\') < 0
		p.ws()
		if p.i >= len(p.src) || p.src[p.i] != ':' {
			return false
		}
		p.i++
		p.put(':')
		p.ws()
		if !p.value(depth + 1) {
			return false
		}
		m.out[1] = p.n
		ms = append(ms, m)
		p.ws()
		if p.i >= len(p.src) {
			return false
		}
		if p.src[p.i] == '}' {
			p.i++
			break
		}
		if p.src[p.i] != ',' {
			return false
		}
		p.i++
		p.put(',')
	}
	sorted := true
	for i := 1; i < len(ms); i++ {
		switch p.compareKeys(&ms[i-1], &ms[i]) {
		case 0:
			return false // a repeated key
		case 1:
			sorted = false
		}
	}
	if !sorted {
		for i := 1; i < len(ms); i++ { // insertion sort: objects are small
			for j := i; j > 0 && p.compareKeys(&ms[j-1], &ms[j]) > 0; j-- {
				ms[j], ms[j-1] = ms[j-1], ms[j]
			}
		}
		var scratch [256]byte // a usual object's, on the stack
		written := scratch[:0]
		if p.n-base <= len(scratch) {
			written = scratch[:copy(scratch[:], p.out[base:p.n])]
		} else {
			written = bytes.Clone(p.out[base:p.n])
		}
		p.n = base
		p.put('{')
		for i, m := range ms {
			if i > 0 {
				p.put(',')
			}
			p.puts(written[m.out[0]-base : m.out[1]-base])
		}
	}
	p.put('}')
	return true
}

// compareKeys compares the keys of a and b by their decoded bytes.
func (p *canonParser) compareKeys(a, b *member) int {
	if a.plain && b.plain {
		return bytes.Compare(p.src[a.key[0]+1:a.key[1]-1], p.src[b.key[0]+1:b.key[1]-1])
	}
	ka, _ := (&canonParser{src: p.src, i: a.key[0]}).decoded()
	kb, _ := (&canonParser{src: p.src, i: b.key[0]}).decoded()
	return strings.Compare(ka, kb)
}

// str appends the canonical form of the string at p.i.
func (p *canonParser) str() bool {
	start := p.i
	p.i++ // '"'
	plain := true
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch {
		case c == '"':
			p.i++
			if plain {
				p.puts(p.src[start:p.i])
				return true
			}
			s, ok := (&canonParser{src: p.src, i: start}).decoded()
			if !ok {
				return false
			}
			p.quote(s)
			return true
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return false
		default:
			p.i++
		}
	}
	return false
}

// decoded returns the value of the string at p.i (which str has checked).
func (p *canonParser) decoded() (string, bool) {
	p.i++
	var out []byte
	for p.i < len(p.src) {
		c := p.src[p.i]
		switch c {
		case '"':
			p.i++
			return string(out), true
		case '\\':
			if p.i+1 >= len(p.src) {
				return "", false
			}
			e := p.src[p.i+1]
			p.i += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return "", false
				}
				if utf16.IsSurrogate(r) {
					if p.i+1 >= len(p.src) || p.src[p.i] != '\\' || p.src[p.i+1] != 'u' {
						return "", false
					}
					p.i += 2
					r2, ok := p.hex4()
					if !ok {
						return "", false
					}
					if r = utf16.DecodeRune(r, r2); r == utf8.RuneError {
						return "", false
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return "", false
			}
		default:
			out = append(out, c)
			p.i++
		}
	}
	return "", false
}

func (p *canonParser) hex4() (rune, bool) {
	if len(p.src)-p.i < 4 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(p.src[p.i:p.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	p.i += 4
	return rune(n), true
}

// quote appends s quoted, escaping only '"', '\' and the control
// characters.
func (p *canonParser) quote(s string) {
	const hex = "0123456789abcdef"
	p.put('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			p.put('\\')
			p.put(c)
		case c < 0x20:
			p.putString(`\u00`)
			p.put(hex[c>>4])
			p.put(hex[c&0xf])
		default:
			p.put(c)
		}
	}
	p.put('"')
}

// number appends the canonical form of the number at p.i.
func (p *canonParser) number() bool {
	neg := false
	if p.src[p.i] == '-' {
		neg = true
		p.i++
	}
	intStart := p.i
	if p.i >= len(p.src) {
		return false
	}
	if p.src[p.i] == '0' {
		p.i++
	} else if p.src[p.i] >= '1' && p.src[p.i] <= '9' {
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			p.i++
		}
	} else {
		return false
	}
	intEnd := p.i
	fracStart, fracEnd := p.i, p.i
	if p.i < len(p.src) && p.src[p.i] == '.' {
		p.i++
		fracStart = p.i
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			p.i++
		}
		fracEnd = p.i
		if fracEnd == fracStart {
			return false
		}
	}
	exp := 0
	if p.i < len(p.src) && (p.src[p.i] == 'e' || p.src[p.i] == 'E') {
		p.i++
		eneg := false
		if p.i < len(p.src) && (p.src[p.i] == '+' || p.src[p.i] == '-') {
			eneg = p.src[p.i] == '-'
			p.i++
		}
		start := p.i
		for p.i < len(p.src) && p.src[p.i] >= '0' && p.src[p.i] <= '9' {
			if p.i-start >= 9 {
				return false
			}
			exp = exp*10 + int(p.src[p.i]-'0')
			p.i++
		}
		if p.i == start {
			return false
		}
		if eneg {
			exp = -exp
		}
	}
	// The significant digits: the integer's and the fraction's, without
	// leading zeros; the exponent counts from the last of them.
	var room [64]byte
	digits := room[:0]
	for _, c := range p.src[intStart:intEnd] {
		if len(digits) > 0 || c != '0' {
			digits = append(digits, c)
		}
	}
	for _, c := range p.src[fracStart:fracEnd] {
		if len(digits) > 0 || c != '0' {
			digits = append(digits, c)
		}
	}
	exp -= fracEnd - fracStart
	for len(digits) > 0 && digits[len(digits)-1] == '0' {
		digits = digits[:len(digits)-1]
		exp++
	}
	if len(digits) == 0 {
		p.put('0')
		return true
	}
	if neg {
		p.put('-')
	}
	p.puts(digits)
	if exp >= 0 && len(digits)+exp <= 21 {
		for range exp {
			p.put('0')
		}
		return true
	}
	p.put('e')
	var num [20]byte
	p.puts(strconv.AppendInt(num[:0], int64(exp), 10))
	return true
}
