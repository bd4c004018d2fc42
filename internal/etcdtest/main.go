package etcdtest

import (
	"fmt"
	"os"
	"testing"
)

// Main is a test package's TestMain body: it runs the binary as a member
// if it was started as one (MaybeMember), else starts a cluster of n
// members in a new temporary directory named after prefix, sets *c to it,
// runs the tests, stops the cluster and exits with the tests' code. The
// members' data and logs are removed after a pass and kept, their
// directory named, after a failure.
func Main(m *testing.M, prefix string, n int, c **Cluster) {
	MaybeMember()
	dir, err := os.MkdirTemp("", prefix+"-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *c, err = Start(dir, n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if err := (*c).Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop etcd cluster:", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 {
		os.RemoveAll(dir)
	} else {
		fmt.Fprintln(os.Stderr, "etcd members' data and logs kept in", dir)
	}
	os.Exit(code)
}
