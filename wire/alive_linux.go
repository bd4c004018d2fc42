package wire

import (
	"net"
	"syscall"
)

// liveness checks whether an idle connection is still open: nothing to read
// and no end of stream. A participant that closed it (its idle timeout, a
// restart) is found here rather than by a request sent into the void. It
// is set up once per connection, so that a check allocates nothing; only
// the connection's holder uses it.
type liveness struct {
	rc   syscall.RawConn // nil when the connection gives none
	err  error           // why rc could not be had: the connection is taken for dead
	peek func(fd uintptr) bool
	open bool // what the last peek found
}

func (l *liveness) init(nc net.Conn) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return
	}
	l.rc, l.err = sc.SyscallConn()
	l.peek = func(fd uintptr) bool {
		var b [1]byte
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		// EAGAIN: open with nothing to read, the only healthy state of an
		// idle HTTP/1.1 connection. Anything else is the end of the stream,
		// an error or stray bytes.
		l.open = err == syscall.EAGAIN || err == syscall.EWOULDBLOCK
		return true
	}
}

// alive reports whether the connection is still open.
func (l *liveness) alive() bool {
	if l.err != nil {
		return false
	}
	if l.rc == nil {
		return true
	}
	l.open = false
	err := l.rc.Read(l.peek)
	return err == nil && l.open
}
