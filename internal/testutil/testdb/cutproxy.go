package testdb

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// CutProxy forwards TCP connections from a loopback address to target. When
// a client sends bytes containing trigger, the proxy passes them on, waits
// for the server's answer, swallows it and closes both sides: the server
// did the work, the client never hears that it did (a lost answer). Later
// connections are forwarded untouched unless Arm is called again.
type CutProxy struct {
	ln      net.Listener
	target  string
	trigger []byte
	armed   atomic.Bool
	// Cut is sent a value each time an answer is swallowed.
	Cut chan struct{}

	mu    sync.Mutex
	conns []net.Conn
}

// NewCutProxy listens on 127.0.0.1 and forwards to target until the test
// ends. It starts armed.
func NewCutProxy(t testing.TB, target string, trigger []byte) *CutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{ln: ln, target: target, trigger: trigger, Cut: make(chan struct{}, 16)}
	p.armed.Store(true)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's host:port.
func (p *CutProxy) Addr() string { return p.ln.Addr().String() }

// Arm makes the next trigger cut its connection.
func (p *CutProxy) Arm() { p.armed.Store(true) }

func (p *CutProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func (p *CutProxy) track(c net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns = append(p.conns, c)
}

func (p *CutProxy) accept() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.track(client)
		p.track(server)
		go p.pipe(client, server)
	}
}

// pipe copies client to server, watching for the trigger, and server to
// client unless the connection has been cut.
func (p *CutProxy) pipe(client, server net.Conn) {
	var cut atomic.Bool
	answered := make(chan struct{}, 1)
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		buf := make([]byte, 32<<10)
		for {
			n, err := server.Read(buf)
			if n > 0 {
				if cut.Load() {
					select {
					case answered <- struct{}{}:
					default:
					}
					continue
				}
				if _, werr := client.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				client.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			trip := p.armed.Load() && bytes.Contains(buf[:n], p.trigger) && p.armed.CompareAndSwap(true, false)
			if trip {
				cut.Store(true)
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				client.Close()
				return
			}
			if trip {
				select { // the server has done it and answered (or hung up)
				case <-answered:
				case <-serverDone:
				}
				client.Close()
				server.Close()
				p.Cut <- struct{}{}
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				client.Close()
			}
			server.Close()
			return
		}
	}
}
