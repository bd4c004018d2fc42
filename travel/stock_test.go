package travel

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseInventory(t *testing.T) {
	got, err := ParseInventory(" FL100=120, FL200 = 40,X.y_z-1=0")
	if err != nil {
		t.Fatal(err)
	}
	want := []Stock{{"FL100", 120}, {"FL200", 40}, {"X.y_z-1", 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestParseInventoryErrors(t *testing.T) {
	cases := []struct{ spec, mention string }{
		{"", "empty"},
		{"   ", "empty"},
		{"FL100", "want SKU=CAPACITY"},
		{"FL100=1,", `entry 2 ""`},
		{"=5", "empty SKU"},
		{"FL 100=5", `byte 2`},
		{"FL100=-1", "capacity"},
		{"FL100=abc", `capacity "abc"`},
		{"FL100=1000001", "0 to 1000000"},
		{"FL100=99999999999999999999", "capacity"},
		{"FL100=1,FL100=2", `"FL100" given twice`},
		{strings.Repeat("A", MaxSKULen+1) + "=1", "at most 32"},
		{strings.Repeat("A=1,", MaxItems) + "B=1", "at most 1000"},
	}
	for _, c := range cases {
		_, err := ParseInventory(c.spec)
		if !errors.Is(err, ErrBadInventory) {
			t.Errorf("ParseInventory(%.40q) = %v, want ErrBadInventory", c.spec, err)
			continue
		}
		if !strings.Contains(err.Error(), c.mention) {
			t.Errorf("ParseInventory(%.40q) error %q does not mention %q", c.spec, err, c.mention)
		}
	}
}

func TestDefaultInventory(t *testing.T) {
	for _, name := range ServiceNames() {
		stock, err := DefaultInventory(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := validateStock(stock); err != nil {
			t.Errorf("%s: default inventory invalid: %v", name, err)
		}
		back, err := ParseInventory(FormatInventory(stock))
		if err != nil || !reflect.DeepEqual(back, stock) {
			t.Errorf("%s: format/parse round trip: %v, %v", name, back, err)
		}
	}
	if _, err := DefaultInventory("trains"); !errors.Is(err, ErrUnknownService) {
		t.Fatalf("DefaultInventory(trains) = %v, want ErrUnknownService", err)
	}
}

// FuzzParseInventory checks that ParseInventory never panics, that what it
// accepts is a valid stock list, and that formatting it parses back to the
// same list.
func FuzzParseInventory(f *testing.F) {
	for _, s := range []string{"FL100=120,FL200=40", "H-PARIS=5", "", "a=1,a=2", "x=", "=", ",,,", "A=-0", "A=+5", "A=0x10", " B = 7 "} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		stock, err := ParseInventory(spec)
		if err != nil {
			if !errors.Is(err, ErrBadInventory) {
				t.Fatalf("error %v does not wrap ErrBadInventory", err)
			}
			return
		}
		if err := validateStock(stock); err != nil {
			t.Fatalf("accepted %q as %v, which is invalid: %v", spec, stock, err)
		}
		back, err := ParseInventory(FormatInventory(stock))
		if err != nil || !reflect.DeepEqual(back, stock) {
			t.Fatalf("round trip of %q: %v, %v", spec, back, err)
		}
	})
}
