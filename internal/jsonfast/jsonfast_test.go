package jsonfast

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

var values = []string{
	`{"sku":"FL100","quantity":2}`, ` [1,-2.5e3,true,false,null,"x",{}] `, `"a\"b\\c\/\b\f\n\r\t\u00e9"`, `0`, `-0.5E+7`,
	`{"a":{"b":[[],{}]}}`, `"hôtel"`, `12`, `true`,
	// Declined:
	`null`, ``, ` `, `{`, `[1,]`, `{"a":1,}`, `{"a"}`, `{a:1}`, `01`, `1.`, `-`, `1e`, `.5`, `"a\x"`, `"\u12"`, `"a`,
	"\"\x01\"", `tru`, `nul`, `{"a":1}}`, strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1),
}

// checkValue checks that Value takes only valid JSON other than null, and
// that it reads all of b but white space just when b is one such value,
// which it reports.
func checkValue(t *testing.T, b []byte) bool {
	t.Helper()
	s := NewScanner(b)
	v, ok := s.Value()
	if !ok {
		return false
	}
	if bytes.Equal(bytes.TrimSpace(v), []byte("null")) || !json.Valid(v) || !bytes.Equal(v, bytes.TrimSpace(v)) {
		t.Fatalf("Value(%q) took %q", b, v)
	}
	if cap(v) != len(v) {
		t.Fatalf("Value(%q) = a slice of cap %d, len %d", b, cap(v), len(v))
	}
	end := s.End()
	if end != json.Valid(b) {
		t.Fatalf("Value(%q) took %q; End %v, json.Valid %v", b, v, end, json.Valid(b))
	}
	return end
}

func TestValue(t *testing.T) {
	taken := 0
	for _, v := range values {
		if checkValue(t, []byte(v)) {
			taken++
		}
	}
	if taken != 9 {
		t.Errorf("Value took %d of the values, want the first 9", taken)
	}
}

// checkInt checks that what Int takes, encoding/json decodes into an int64
// as the same number.
func checkInt(t *testing.T, b []byte) {
	t.Helper()
	s := NewScanner(b)
	v, ok := s.Int()
	if !ok || !s.End() {
		return
	}
	var want int64
	if err := json.Unmarshal(b, &want); err != nil || want != v {
		t.Fatalf("Int(%q) = %d; json.Unmarshal %d, %v", b, v, want, err)
	}
}

// checkPlain checks that what Plain takes, encoding/json decodes as the same
// string, and that IsPlain strings are written by json.Marshal as they are.
func checkPlain(t *testing.T, b []byte) {
	t.Helper()
	s := NewScanner(b)
	if v, ok := s.Plain(); ok && s.End() {
		var want string
		if err := json.Unmarshal(b, &want); err != nil || want != string(v) {
			t.Fatalf("Plain(%q) = %q; json.Unmarshal %q, %v", b, v, want, err)
		}
	}
	if IsPlain(string(b)) {
		if m, _ := json.Marshal(string(b)); string(m) != `"`+string(b)+`"` {
			t.Fatalf("IsPlain(%q), but json.Marshal writes %s", b, m)
		}
	}
	if IsCompactPlain(b) && len(b) > 0 { // json.Marshal omits an empty payload (omitempty)
		if m, err := json.Marshal(json.RawMessage(b)); err != nil || string(m) != string(b) {
			t.Fatalf("IsCompactPlain(%q), but json.Marshal writes %s, %v", b, m, err)
		}
	}
}

func TestScalars(t *testing.T) {
	for _, b := range []string{`0`, `-0`, `123456789012345678`, `1234567890123456789`, `-12`, `012`, `1.0`, `1e2`, `-`, ` 7 `} {
		checkInt(t, []byte(b))
	}
	for _, b := range []string{`"abc"`, `""`, `"a\"b"`, `"é"`, "\"\t\"", `"<&>"`, `"a`} {
		checkPlain(t, []byte(b))
	}
	if s := NewScanner([]byte(` -42`)); func() bool { v, ok := s.Int(); return v != -42 || !ok }() {
		t.Error("Int did not read -42")
	}
}

func TestObjectRefusesRepeatedAndUnknownKeys(t *testing.T) {
	for b, want := range map[string]bool{
		`{"a":1,"b":2}`: true, `{}`: true, `{"a":1,"a":2}`: false, `{"c":1}`: false, `{"a":1,}`: false, `{"a" 1}`: false,
	} {
		s := NewScanner([]byte(b))
		ok := s.Object(func() (uint, bool) {
			key := string(s.Key())
			_, ok := s.Int()
			switch key {
			case "a":
				return 1, ok
			case "b":
				return 2, ok
			}
			return 0, false
		})
		if ok && s.End() != want {
			t.Errorf("Object(%s) = %v, want %v", b, ok, want)
		}
	}
}

// FuzzScanner checks the Scanner's readers against encoding/json: Value
// takes only valid JSON other than null, Int and Plain only what
// encoding/json decodes as the same number or string, and IsPlain and
// IsCompactPlain only what json.Marshal writes unchanged.
func FuzzScanner(f *testing.F) {
	for _, v := range values {
		f.Add([]byte(v))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		checkValue(t, b)
		checkInt(t, b)
		checkPlain(t, b)
	})
}
