package server

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// BenchmarkLoad is the load run of issue 16's table: for each shape, 8
// keep-alive connections over loopback send the same request as fast as
// they are answered, alternating (in rounds, so both see the same machine
// load) between the gateway and a bare net/http server that answers the
// exact bytes the gateway answered. It reports the gateway's req/s, the
// bare server's, the gateway's share of it (pct-of-bare) and the p99
// latency of both. MHG_LOAD_SECONDS is the time per shape (default 4,
// half of it on each server).
//
//	go test -run '^$' -bench BenchmarkLoad ./gateway/server/
//
// The shapes, on the embedded default's sample sources (three bundle
// sources): a cached Patient read with the in-process cache and with
// Redis, a Condition search for one patient, a Patient search by
// passport over the three sources, and a warm Patient/$summary; then the
// read on a replica shipping its audit to PostgreSQL, and, as a
// diagnostic, the read with no audit record.
func BenchmarkLoad(b *testing.B) {
	secs := 4.0
	if v := os.Getenv("MHG_LOAD_SECONDS"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f <= 0 {
			b.Fatalf("MHG_LOAD_SECONDS=%q: want a positive number of seconds", v)
		}
		secs = f
	}
	g, tok, id := benchGateway(b, nil, Options{})
	type shape struct {
		name string
		g    *gateway
		tok  string
		path string
	}
	shapes := []shape{
		{"read-inprocess", g, tok, "/Patient/" + id},
		{"read-redis", nil, "", ""},
		{"condition-search", g, tok, "/Condition?patient=" + id},
		{"passport-search-3-sources", g, tok, "/Patient?identifier=" + url.QueryEscape(aminaPassport)},
		{"summary-warm", g, tok, "/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport)},
	}
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("REDIS_URL") != "" {
		ru := redisURL(b)
		gr, tokR, idR := benchGateway(b, func(c *config.Config) { c.Redis.URL = ru }, Options{})
		shapes[1] = shape{"read-redis", gr, tokR, "/Patient/" + idR}
	} else {
		shapes = slices.Delete(shapes, 1, 2)
	}
	// The same read on a replica shipping its audit records to a
	// PostgreSQL repository (the scale-out setting).
	db := pgtest.NewDatabase(b, "")
	gp, tokP, idP := benchGateway(b, func(c *config.Config) { c.Audit.DatabaseURL = db }, Options{})
	shapes = append(shapes, shape{"read-inprocess+repository", gp, tokP, "/Patient/" + idP})
	// A diagnostic, not a configuration the gateway offers: the same read
	// with no audit record at all. Set beside read-inprocess, it shows
	// what the durable audit record (written and synced to disk before
	// the answer leaves, one sync shared by the requests waiting for it)
	// costs under this load.
	gu, tokU, idU := benchGateway(b, nil, Options{Auditor: noAudit{}})
	shapes = append(shapes, shape{"read-inprocess-unaudited-diagnostic", gu, tokU, "/Patient/" + idU})
	for _, sh := range shapes {
		first := sh.g.get(b, sh.path, sh.tok)
		if first.status != http.StatusOK {
			b.Fatalf("%s: %d %.300s", sh.name, first.status, first.body)
		}
		ct := first.header.Get("Content-Type")
		body := first.body
		bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", ct)
			w.Write(body)
		}))
		b.Cleanup(bare.Close)
		gwURL := sh.g.base + sh.path
		bareURL := bare.URL + "/fhir" + sh.path
		b.Run(sh.name, func(b *testing.B) {
			const rounds = 4
			per := time.Duration(secs / (2 * rounds) * float64(time.Second))
			var gw, base loadResult
			for range rounds {
				base.add(loadRun(b, bareURL, "", per))
				gw.add(loadRun(b, gwURL, sh.tok, per))
			}
			b.ReportMetric(gw.rate(), "req/s")
			b.ReportMetric(base.rate(), "bare-req/s")
			b.ReportMetric(100*gw.rate()/base.rate(), "pct-of-bare")
			b.ReportMetric(gw.p99().Seconds()*1000, "p99-ms")
			b.ReportMetric(base.p99().Seconds()*1000, "bare-p99-ms")
		})
	}
}

// loadConns is the number of connections of the load run.
const loadConns = 8

// loadResult accumulates requests and their latencies.
type loadResult struct {
	n    int
	took time.Duration
	lat  []time.Duration
}

func (r *loadResult) add(o loadResult) {
	r.n += o.n
	r.took += o.took
	r.lat = append(r.lat, o.lat...)
}

func (r *loadResult) rate() float64 { return float64(r.n) / r.took.Seconds() }

func (r *loadResult) p99() time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	slices.Sort(r.lat)
	return r.lat[len(r.lat)*99/100]
}

// loadRun sends GET u over loadConns keep-alive connections for d and
// fails the benchmark on any answer but 200.
func loadRun(b *testing.B, u, token string, d time.Duration) loadResult {
	b.Helper()
	var (
		mu   sync.Mutex
		out  loadResult
		errs atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(d)
	for range loadConns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tr := &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			var lat []time.Duration
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, u, nil)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs.Add(1)
				}
				lat = append(lat, time.Since(t0))
			}
			mu.Lock()
			out.n += len(lat)
			out.lat = append(out.lat, lat...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	out.took = time.Since(start)
	if n := errs.Load(); n > 0 {
		b.Fatalf("%s: %d failed requests", u, n)
	}
	return out
}
