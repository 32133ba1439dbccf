package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
)

// Benchmarks of the whole gateway. Each compares with a baseline measured
// in the same run, because the machines they run on are shared and noisy:
// absolute figures move, ratios much less.

// noAudit stands in for the audit log where a benchmark measures what
// auditing costs.
type noAudit struct{}

func (noAudit) Record(context.Context, audit.Entry) (string, error) { return "", nil }

// benchGateway starts a gateway for a benchmark and returns its handler,
// a token and the gateway id of the sample migrant in de-sample.
func benchGateway(b *testing.B, edit func(*config.Config), opts Options) (*gateway, string, string) {
	b.Helper()
	g := startGateway(b, edit, opts)
	tok := g.token(b, "DE", "clinician", "TREAT")
	r := g.get(b, "/Patient?identifier="+aminaPassport, tok)
	for _, p := range r.entries("match") {
		if id := p["id"].(string); strings.HasPrefix(id, "de-") {
			return g, tok, id
		}
	}
	b.Fatalf("no de patient: %s", r.body)
	return nil, "", ""
}

// serveOnce runs one in-process request and checks its status.
func serveOnce(b *testing.B, h http.Handler, req *http.Request, want int) {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != want {
		b.Fatalf("status %d: %s", w.Code, w.Body.String())
	}
}

// BenchmarkPatientRead is one authorised Patient read from a bundle source
// through the whole handler (auth, policy, cache hit, release, marshal,
// audit) next to a bare Gin handler returning the same bytes.
func BenchmarkPatientRead(b *testing.B) {
	g, tok, id := benchGateway(b, nil, Options{})
	h := g.srv.Handler()
	req := httptest.NewRequest("GET", "/fhir/Patient/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	body := w.Body.Bytes()

	gin.SetMode(gin.ReleaseMode)
	bare := gin.New()
	bare.GET("/fhir/Patient/:id", func(c *gin.Context) { c.Data(200, "application/fhir+json; charset=utf-8", body) })

	b.Run("bare-gin", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serveOnce(b, bare, req, 200)
		}
	})
	b.Run("gateway", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serveOnce(b, h, req, 200)
		}
	})
	b.Run("ratio", func(b *testing.B) {
		var gw, base time.Duration
		for b.Loop() {
			t0 := time.Now()
			serveOnce(b, bare, req, 200)
			t1 := time.Now()
			serveOnce(b, h, req, 200)
			gw += time.Since(t1)
			base += t1.Sub(t0)
		}
		b.ReportMetric(float64(gw)/float64(base), "gateway/bare")
	})
}

// BenchmarkCachedVsUncached is a Patient read through the whole HTTP stack
// served from the in-process cache, from Redis, and from an httptest
// national FHIR server with the cache off (every read fetched, parsed and
// mapped), each as a ratio to the in-process cached read measured
// alongside it.
func BenchmarkCachedVsUncached(b *testing.B) {
	ns := newNationalServer(b, "de-sample")
	fhirSource := func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: ns.URL}}
	}
	inproc, tok, id := benchGateway(b, fhirSource, Options{})
	variants := map[string]func(*config.Config){
		"uncached": func(c *config.Config) { fhirSource(c); c.Cache.Disabled = true },
	}
	if url := redisURL(b); url != "" {
		variants["redis"] = func(c *config.Config) { fhirSource(c); c.Redis.URL = url }
	}
	base := inproc.srv.Handler()
	reqFor := func() *http.Request {
		r := httptest.NewRequest("GET", "/fhir/Patient/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	for name, edit := range variants {
		g, tok2, id2 := benchGateway(b, edit, Options{})
		if id2 != id {
			b.Fatalf("ids differ between gateways: %s %s", id, id2)
		}
		h := g.srv.Handler()
		req := httptest.NewRequest("GET", "/fhir/Patient/"+id, nil)
		req.Header.Set("Authorization", "Bearer "+tok2)
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			var took, baseTook time.Duration
			for b.Loop() {
				t0 := time.Now()
				serveOnce(b, base, reqFor(), 200)
				t1 := time.Now()
				serveOnce(b, h, req, 200)
				took += time.Since(t1)
				baseTook += t1.Sub(t0)
			}
			b.ReportMetric(float64(took)/float64(baseTook), "x-inprocess-cached")
		})
	}
}

// BenchmarkTracingAndAudit is the overhead of tracing (every span recorded
// and exported) and of the audit log (hash chain, fsync) on a cached read,
// as a ratio to the same read with both off.
func BenchmarkTracingAndAudit(b *testing.B) {
	off, tok, id := benchGateway(b, nil, Options{Auditor: noAudit{}})
	on, tokOn, _ := benchGateway(b, nil, Options{TraceExporter: tracetest.NewNoopExporter()})
	mk := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/fhir/Patient/"+id, nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	hOff, hOn := off.srv.Handler(), on.srv.Handler()
	b.Run("paired", func(b *testing.B) {
		var tOn, tOff time.Duration
		for b.Loop() {
			t0 := time.Now()
			serveOnce(b, hOff, mk(tok), 200)
			t1 := time.Now()
			serveOnce(b, hOn, mk(tokOn), 200)
			tOn += time.Since(t1)
			tOff += t1.Sub(t0)
		}
		b.ReportMetric(float64(tOn)/float64(tOff), "traced+audited/off")
	})
}

// BenchmarkLoad is the load run: concurrent clients over loopback HTTP
// (keep-alive) doing a realistic mix (a patient search across three
// sources, a read, a condition search), against a bare Gin server on
// loopback answering the same bytes with the same concurrency.
func BenchmarkLoad(b *testing.B) {
	g, tok, id := benchGateway(b, nil, Options{})
	paths := []string{
		"/Patient?identifier=" + aminaPassport, "/Patient/" + id, "/Condition?patient=" + id,
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	bodies := map[string][]byte{}
	for _, p := range paths {
		r := g.get(b, p, tok)
		bodies[p] = r.body
	}
	gin.SetMode(gin.ReleaseMode)
	bare := gin.New()
	bare.NoRoute(func(c *gin.Context) {
		c.Data(200, "application/fhir+json", bodies[strings.TrimPrefix(c.Request.URL.RequestURI(), "/fhir")])
	})
	bareSrv := httptest.NewServer(bare)
	b.Cleanup(bareSrv.Close)

	run := func(b *testing.B, base, tok string) {
		var n, errs atomic.Int64
		b.SetParallelism(8)
		b.ResetTimer()
		start := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				p := paths[i%len(paths)]
				i++
				req, _ := http.NewRequest("GET", base+p, nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
				}
				n.Add(1)
			}
		})
		b.ReportMetric(float64(n.Load())/time.Since(start).Seconds(), "req/s")
		if errs.Load() > 0 {
			b.Fatalf("%d failed requests", errs.Load())
		}
	}
	var bareRate float64
	b.Run("bare-gin", func(b *testing.B) {
		start := time.Now()
		run(b, bareSrv.URL+"/fhir", tok)
		bareRate = float64(b.N) / time.Since(start).Seconds()
	})
	b.Run("gateway", func(b *testing.B) {
		start := time.Now()
		run(b, g.base, tok)
		if bareRate > 0 {
			b.ReportMetric(bareRate/(float64(b.N)/time.Since(start).Seconds()), "x-bare-gin-time")
		}
	})
	// The same replica shipping its audit records to a PostgreSQL
	// repository (the scale-out setting): what one replica carries.
	b.Run("gateway+repository", func(b *testing.B) {
		db := pgtest.NewDatabase(b, "")
		gr, rtok, _ := benchGateway(b, func(c *config.Config) { c.Audit.DatabaseURL = db }, Options{})
		start := time.Now()
		run(b, gr.base, rtok)
		if bareRate > 0 {
			b.ReportMetric(bareRate/(float64(b.N)/time.Since(start).Seconds()), "x-bare-gin-time")
		}
	})
}
