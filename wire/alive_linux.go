package wire

import (
	"net"
	"syscall"
)

// alive reports whether an idle connection is still open: nothing to read
// and no end of stream. A participant that closed it (its idle timeout, a
// restart) is found here rather than by a request sent into the void.
func alive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	err = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open with nothing to read, the only healthy state of an
		// idle HTTP/1.1 connection. Anything else is the end of the stream,
		// an error or stray bytes.
		ok = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	})
	return err == nil && ok
}
