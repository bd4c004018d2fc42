package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// conn is one keep-alive HTTP/1.1 connection to the coordinator, owned by
// one bench client: a request is written whole in one write and its answer
// read on the client's own goroutine, with no transport goroutines in
// between, so that the load generator takes as little of the machine as it
// can from the system it measures.
type conn struct {
	addr, host string
	nc         net.Conn
	br         *bufio.Reader
	req        []byte // request scratch
	stop       func() bool
}

// requestTimeout bounds one request on a bench connection.
const requestTimeout = 2 * time.Minute

func newConn(base string) (*conn, error) {
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		return nil, fmt.Errorf("coordinator URL %q: want http://host:port", base)
	}
	return &conn{addr: u.Host, host: u.Host}, nil
}

// post sends body to path and returns the answer's status and body (in
// buf). ctx ending interrupts the request.
func (c *conn) post(ctx context.Context, path string, body []byte, buf *bytes.Buffer) (int, error) {
	if c.nc == nil {
		d := net.Dialer{Timeout: 5 * time.Second}
		nc, err := d.DialContext(ctx, "tcp", c.addr)
		if err != nil {
			return 0, err
		}
		c.nc, c.br = nc, bufio.NewReaderSize(nc, 4096)
		c.stop = context.AfterFunc(ctx, func() { nc.SetDeadline(time.Unix(1, 0)) })
	}
	c.req = append(c.req[:0], "POST "...)
	c.req = append(c.req, path...)
	c.req = append(c.req, " HTTP/1.1\r\nHost: "...)
	c.req = append(c.req, c.host...)
	c.req = append(c.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	c.req = strconv.AppendInt(c.req, int64(len(body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, body...)
	c.nc.SetDeadline(time.Now().Add(requestTimeout))
	if _, err := c.nc.Write(c.req); err != nil {
		c.close()
		return 0, err
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, err
	}
	buf.Reset()
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		c.close()
		return 0, fmt.Errorf("read answer: %w", err)
	}
	if resp.Close {
		c.close()
	}
	return resp.StatusCode, nil
}

func (c *conn) close() {
	if c.nc != nil {
		c.stop()
		c.nc.Close()
		c.nc = nil
	}
}
