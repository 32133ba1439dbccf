package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
)

// The profiler answers on its own loopback listener when
// server.pprof_listen is set, and nowhere on the gateway's port.
func TestPprofListener(t *testing.T) {
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := free.Addr().String()
	free.Close()
	g := startGateway(t, func(c *config.Config) { c.Server.PprofListen = addr }, Options{})

	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/debug/pprof/")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine") {
				t.Fatalf("profiler index: %d %.200s", resp.StatusCode, body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("profiler not listening on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	root := strings.TrimSuffix(g.base, "/fhir")
	for _, p := range []string{root + "/debug/pprof/", g.base + "/debug/pprof/"} {
		if r := g.get(t, p, ""); r.status == http.StatusOK {
			t.Errorf("%s answers on the gateway's port", p)
		}
	}
}

// Off by default: no profiler on the gateway's port either.
func TestPprofOffByDefault(t *testing.T) {
	t.Parallel()
	if config.Default().Server.PprofListen != "" {
		t.Fatal("pprof_listen is set by default")
	}
}
