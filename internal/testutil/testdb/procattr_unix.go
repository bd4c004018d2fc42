//go:build unix && !linux

package testdb

import "syscall"

// procAttr runs a server as c (nil: as the tests' own user).
func procAttr(c *cred) *syscall.SysProcAttr {
	if c == nil {
		return nil
	}
	return &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.uid, Gid: c.gid}}
}
