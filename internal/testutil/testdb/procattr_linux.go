package testdb

import "syscall"

// procAttr runs a server as c (nil: as the tests' own user) and kills it
// when the test binary dies without stopping it.
func procAttr(c *cred) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if c != nil {
		a.Credential = &syscall.Credential{Uid: c.uid, Gid: c.gid}
	}
	return a
}
