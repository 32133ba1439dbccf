package server

import (
	"bytes"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/telemetry/telemetrytest"
)

// lockedBuffer collects log lines written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.b.Bytes()...)
}

// TestNoPHIInTelemetry runs a realistic session through the whole gateway
// with traces recorded and logs at debug level, then scans every span
// name, attribute and event, every log line and every metric label for the
// fixtures' names, identifiers, birth dates, addresses and the gateway ids
// of patients. None may appear.
func TestNoPHIInTelemetry(t *testing.T) {
	spans := tracetest.NewInMemoryExporter()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	de, nl, _, edit := nationalSources(t)
	g := startGateway(t, func(c *config.Config) {
		edit(c)
		// A built-in source too, and the cache on.
		c.Sources = append(c.Sources, config.Source{ID: "ua-sample", Country: "UA", Profile: "ips", Kind: config.KindBundle, Dir: config.BuiltinPrefix + "ua-sample"})
		c.Cache.Disabled = false
		c.Log.Level = "debug"
	}, Options{TraceExporter: spans, Logger: logger})

	clin := g.token(t, "DE", "clinician", "TREAT")
	needles := fixtureNeedles(t)
	search := g.get(t, "/Patient?identifier="+aminaPassport, clin)
	if search.status != 200 || len(search.entries("match")) != 3 {
		t.Fatalf("search %d %s", search.status, search.body)
	}
	for _, p := range search.entries("match") {
		id := p["id"].(string)
		needles = append(needles, id)
		for _, path := range []string{
			"/Patient/" + id, "/Patient/" + id + "?_elements=name", "/Condition?patient=" + id,
			"/Immunization?patient=" + id, "/Observation?patient=" + id + "&_count=1",
			"/MedicationStatement?patient=" + id, "/AllergyIntolerance?patient=" + id,
		} {
			if r := g.get(t, path, clin); r.status != 200 {
				t.Fatalf("%s: %d %s", path, r.status, r.body)
			}
		}
		// Refusals and errors carry the same ids in their requests.
		g.get(t, "/Patient/"+id, g.token(t, "US", "clinician", "TREAT"))
		g.get(t, "/Patient/"+id, g.token(t, "DE", "clinician", "HLEGAL"))
		g.get(t, "/Patient/"+id+"x", clin)
		g.get(t, "/Condition?patient="+id+"&_include=Condition:subject", clin)
		g.get(t, "/Patient/"+id, "")
	}
	// A failing source, an unknown identifier, an auditor's search.
	nl.mode.Store("500")
	g.get(t, "/Patient?identifier="+aminaPassport, clin, "Cache-Control", "no-cache")
	nl.mode.Store("")
	de.mode.Store("garbage")
	g.get(t, "/Patient?identifier=http://hl7.org/fhir/sid/passport-UKR|FT482913", clin, "Cache-Control", "no-cache")
	de.mode.Store("")
	g.get(t, "/Patient?identifier=urn:oid:1.2.3|Seitumerova-1991-03-14", clin)
	g.get(t, "/AuditEvent?patient=Patient/"+search.entries("match")[0]["id"].(string), g.token(t, "DE", "auditor", "HCOMPL"))
	// Demographic searches: found, refused, too few traits, too little
	// confidence, a bad date; the traits are patient data too.
	if r := g.post(t, "/Patient/$match", clin, "application/fhir+json", matchBody(aminaTraits)); r.status != 200 || len(candidates(t, r)) == 0 {
		t.Fatalf("$match: %d %s", r.status, r.body)
	}
	g.post(t, "/Patient/$match", g.token(t, "DE", "nurse", "TREAT"), "application/fhir+json", matchBody(aminaTraits))
	g.post(t, "/Patient/$match", clin, "application/fhir+json", matchBody(`,"name":[{"family":"Seitumerova","given":["Amina"]}]`))
	g.post(t, "/Patient/$match", clin, "application/fhir+json", matchBody(`,"name":[{"family":"Seitumerowa","given":["Amina"]}],"birthDate":"1991","gender":"female"`,
		`{"name":"onlyCertainMatches","valueBoolean":true}`))
	g.post(t, "/Patient/$match", clin, "application/fhir+json", matchBody(`,"name":[{"family":"Seitumerova"}],"birthDate":"1991-02-30"`))
	metrics := g.get(t, "http://"+g.cfg.Listen+"/metrics", "")
	if metrics.status != 200 || !bytes.Contains(metrics.body, []byte("mhg_authz_decisions_total")) {
		t.Fatalf("metrics: %d", metrics.status)
	}

	needles = append(needles, "Seitumerova-1991-03-14", "FT482913")
	stubs := spans.GetSpans()
	if len(stubs) < 50 {
		t.Fatalf("only %d spans recorded; the session did not run through tracing", len(stubs))
	}
	names := map[string]bool{}
	for _, s := range stubs {
		names[s.Name] = true
	}
	for _, want := range []string{"source.fetch", "mapping.apply", "authz.decide", "audit.write", "GET /fhir/:type"} {
		if !names[want] {
			t.Errorf("no %q span among %v", want, names)
		}
	}
	if findings := telemetrytest.ScanForPHI(stubs, logs.Bytes(), metrics.body, needles); len(findings) > 0 {
		for _, f := range findings {
			t.Error(f)
		}
	}

	// The scan is not blind: patient data written where it must not be is
	// found.
	logger.Info("leak " + needles[0])
	if findings := telemetrytest.ScanForPHI(stubs, logs.Bytes(), metrics.body, needles); len(findings) == 0 {
		t.Fatal("the scan did not see a name written into a log line")
	}
}

// fixtureNeedles collects the PHI of every sample patient the gateway
// serves.
func fixtureNeedles(t testing.TB) []string {
	t.Helper()
	var docs [][]byte
	err := fs.WalkDir(examples.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		f, err := examples.FS.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(f)
		docs = append(docs, b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	needles, err := telemetrytest.Needles(docs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(needles) < 50 {
		t.Fatalf("only %d needles from the fixtures", len(needles))
	}
	return needles
}
