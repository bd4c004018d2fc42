//go:build !unix

package testdb

import "syscall"

// procAttr has nothing to set outside Unix (where tests do not run as root).
func procAttr(*cred) *syscall.SysProcAttr { return nil }
