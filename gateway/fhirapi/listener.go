package fhirapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
)

// Listener wraps ln so that the few answers Go's HTTP server gives by
// itself, before any handler runs (a request it cannot parse, headers above
// its own limit, a transfer coding it does not know), are OperationOutcomes
// with an X-Request-Id like every other answer, not plain text.
//
// The server writes those answers straight to the connection in one write
// of a fixed shape (status line, a text/plain Content-Type, Connection:
// close, then the status again as the body); a write of exactly that shape
// is replaced. Every other answer has at least a Date header and passes
// through untouched.
func Listener(ln net.Listener) net.Listener { return outcomeListener{ln} }

type outcomeListener struct{ net.Listener }

func (l outcomeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &outcomeConn{Conn: c}, nil
}

// outcomeConn rewrites the server's own error answers.
type outcomeConn struct{ net.Conn }

// serverErrorHeaders is what net/http puts between the status line and
// the body of the answers it gives by itself.
const serverErrorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

var serverError = regexp.MustCompile(`^HTTP/1\.1 ([1-5][0-9]{2}) [^\r\n]*` + regexp.QuoteMeta(serverErrorHeaders) + `[^\r\n]*$`)

func (c *outcomeConn) Write(b []byte) (int, error) {
	if len(b) > 512 || !bytes.HasPrefix(b, []byte("HTTP/1.1 ")) || !bytes.Contains(b, []byte(serverErrorHeaders)) {
		return c.Conn.Write(b)
	}
	m := serverError.FindSubmatch(b)
	if m == nil {
		return c.Conn.Write(b)
	}
	status, _ := strconv.Atoi(string(m[1]))
	if _, err := c.Conn.Write(serverAnswer(status)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// CloseWrite lets the server half-close the connection after a 431, as it
// does on the connection it wraps.
func (c *outcomeConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// serverAnswer renders the OperationOutcome answer for a status the HTTP
// server chose by itself.
func serverAnswer(status int) []byte {
	e := errorf(status, "invalid", "the request is not well-formed HTTP")
	switch status {
	case http.StatusRequestHeaderFieldsTooLarge:
		e = errorf(status, "too-long", "request headers too large")
	case http.StatusNotImplemented:
		e = errorf(status, "not-supported", "unsupported transfer encoding")
	case http.StatusHTTPVersionNotSupported:
		e = errorf(status, "not-supported", "unsupported HTTP version")
	}
	body := mustJSON(outcomeOf(e))
	var id [16]byte
	_, _ = rand.Read(id[:])
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nCache-Control: no-store\r\nX-Request-Id: %s\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s",
		status, http.StatusText(status), contentType, hex.EncodeToString(id[:]), len(body), body)
}
