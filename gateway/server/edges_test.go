package server

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/config"
)

// rawExchange sends raw bytes to the gateway and reads one response.
func rawExchange(t *testing.T, addr, request string) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("no HTTP response to %.40q: %v", request, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, body
}

// TestAnswersBeforeAnyHandler: the answers Go's HTTP server and the router
// give before a route's handler runs (a malformed request, headers above
// the server's own limit, a trailing slash) are OperationOutcomes with an
// X-Request-Id like every other answer.
func TestAnswersBeforeAnyHandler(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(c *config.Config) { c.Server.MaxHeaderBytes = 4 << 10 }, Options{})
	addr := g.cfg.Listen
	huge := strings.Repeat("a", 64<<10)
	for _, tc := range []struct {
		name    string
		request string
		status  int
	}{
		{"not HTTP", "GARBAGE\r\n\r\n", 400},
		{"no Host header", "GET /fhir/metadata HTTP/1.1\r\n\r\n", 400},
		{"malformed header line", "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400},
		{"headers above the server's own limit", "GET /fhir/metadata HTTP/1.1\r\nHost: x\r\nX-Big: " + huge + "\r\n\r\n", 431},
		{"unsupported transfer encoding", "POST /fhir/$to-mhp HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"trailing slash", "GET /fhir/metadata/ HTTP/1.1\r\nHost: x\r\n\r\n", 301},
		{"trailing slash on a read", "GET /fhir/Patient/x/ HTTP/1.1\r\nHost: x\r\n\r\n", 301},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := rawExchange(t, addr, tc.request)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if id := resp.Header.Get("X-Request-Id"); len(id) != 32 {
				t.Errorf("X-Request-Id %q", id)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
				t.Errorf("Content-Type %q: %s", ct, body)
			}
			res, err := r4.Parse(body)
			if err != nil || r4.TypeName(res) != "OperationOutcome" {
				t.Errorf("body is not an OperationOutcome (%v): %s", err, body)
			}
		})
	}
	// The redirect keeps the query and never leaves the host.
	resp, _ := rawExchange(t, addr, "GET /fhir/metadata/?_format=json HTTP/1.1\r\nHost: x\r\n\r\n")
	if loc := resp.Header.Get("Location"); loc != "/fhir/metadata?_format=json" {
		t.Errorf("Location %q", loc)
	}
	resp, _ = rawExchange(t, addr, "GET //evil.example/ HTTP/1.1\r\nHost: x\r\n\r\n")
	if loc := resp.Header.Get("Location"); resp.StatusCode != 404 || loc != "" {
		t.Errorf("//evil.example/: %d, Location %q", resp.StatusCode, loc)
	}
}
