package apicheck

import (
	"fmt"
	"net/http"
	"os"
	"testing"
)

// Main runs a test binary's tests with http.DefaultClient's transport
// checked against the documents, so that every http.Get, http.Post and
// http.DefaultClient.Do of the tests is validated; it fails the binary
// (exit 1) if any exchange did not match, listing each. Call it from
// TestMain.
func Main(m *testing.M) {
	c, err := New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "apicheck:", err)
		os.Exit(2)
	}
	Default = c
	http.DefaultClient = c.Client(http.DefaultClient)
	code := m.Run()
	if f := c.Failures(); len(f) > 0 {
		fmt.Fprintf(os.Stderr, "FAIL: %d exchanges do not match the OpenAPI documents:\n", len(f))
		for _, s := range f {
			fmt.Fprintln(os.Stderr, "  "+s)
		}
		code = 1
	}
	os.Exit(code)
}

// Default is the Checker Main installed, for tests that build their own
// clients (Default.Client(hc)). Nil outside Main.
var Default *Checker
