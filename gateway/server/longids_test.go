package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/source"
)

// sampleTypes are the types the built-in samples hold.
var sampleTypes = []string{"AllergyIntolerance", "Composition", "Condition", "Immunization", "MedicationRequest",
	"MedicationStatement", "Observation", "Organization", "Patient", "Practitioner", "Procedure"}

// longID is the id a real server might give a sample resource: 64
// characters for a Patient, 48 for the rest, all legal FHIR id characters.
func longID(typ, id string) string {
	sum := sha256.Sum256([]byte(typ + "/" + id))
	long := id + "." + hex.EncodeToString(sum[:])
	if typ == "Patient" {
		return long[:64]
	}
	return long[:48]
}

// newLongIDServer serves a built-in sample over FHIR REST as a national
// server that writes long ids would: every id, and every reference to it,
// replaced by longID. It returns the server and the original sample.
func newLongIDServer(t *testing.T, sample string) (*nationalServer, *source.Bundle) {
	t.Helper()
	orig, err := source.OpenBundle(source.Options{ID: "upstream", Country: "XX", Profile: "x", Kind: source.KindBundle,
		BuiltinDir: sample, Builtin: examples.FS, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, typ := range sampleTypes {
		rs, err := orig.Search(context.Background(), typ, url.Values{})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			var m map[string]any
			if err := json.Unmarshal(r.JSON, &m); err != nil {
				t.Fatal(err)
			}
			m["id"] = longID(r.Type, r.ID)
			rewriteRefs(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			lines = append(lines, string(b))
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "records.ndjson"), []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	long, err := source.OpenBundle(source.Options{ID: "upstream", Country: "XX", Profile: "x", Kind: source.KindBundle, Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ns := &nationalServer{}
	ns.mode.Store("")
	ns.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.requests.Add(1)
		ns.serve(w, r, long)
	}))
	t.Cleanup(ns.Close)
	return ns, orig
}

func rewriteRefs(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok && k == "reference" {
				if typ, id, ok := strings.Cut(s, "/"); ok && !strings.Contains(id, "/") {
					t[k] = typ + "/" + longID(typ, id)
				}
				continue
			}
			rewriteRefs(child)
		}
	case []any:
		for _, child := range t {
			rewriteRefs(child)
		}
	}
}

// A German national server whose ids are 48 and 64 characters long (FHIR
// allows 64), through the real mappings and policies, paged two entries at
// a time: the migrant is found, read, searched by _id, and every record of
// hers is returned, in searches, $everything and $summary, none lost.
func TestLongUpstreamIDsEndToEnd(t *testing.T) {
	t.Parallel()
	de, orig := newLongIDServer(t, "de-sample")
	nl, ua := newNationalServer(t, "nl-sample"), newNationalServer(t, "ua-sample")
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "ua-ehealth", Country: "UA", Profile: "ips", Kind: config.KindFHIR, BaseURL: ua.URL, Timeout: sourceTimeout},
			{ID: "nl-lsp", Country: "NL", Profile: "nl-core", Kind: config.KindFHIR, BaseURL: nl.URL, Timeout: sourceTimeout},
			{ID: "de-national-ehr", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: de.URL, Timeout: sourceTimeout},
		}
		c.Federation.SourceTimeout = sourceTimeout
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")

	found := g.get(t, "/Patient?identifier="+url.QueryEscape(aminaPassport), tok)
	var pid string
	for _, p := range found.entries("match") {
		if id := p["id"].(string); strings.HasPrefix(id, "de-national-ehr.") {
			pid = id
		}
	}
	if found.status != 200 || pid == "" || len(sourcesOf(found.entries("match"))) != 3 {
		t.Fatalf("search: %d %s", found.status, found.body)
	}
	noWarnings(t, found)

	if r := g.get(t, "/Patient/"+pid, tok); r.status != 200 || r.json["id"] != pid {
		t.Fatalf("read: %d %s", r.status, r.body)
	}
	if r := g.get(t, "/Patient?_id="+pid, tok); r.status != 200 || r.json["total"] != float64(1) {
		t.Fatalf("Patient?_id: %d %s", r.status, r.body)
	}

	// The upstream's count of each type for her equals the gateway's.
	var origPatient string
	ps, _ := orig.Search(context.Background(), "Patient", url.Values{"identifier": {aminaPassport}})
	if len(ps) != 1 {
		t.Fatalf("sample patients %d", len(ps))
	}
	origPatient = ps[0].ID
	for _, typ := range []string{"Condition", "Immunization", "AllergyIntolerance", "MedicationStatement"} {
		want, _ := orig.Search(context.Background(), typ, url.Values{"patient": {origPatient}})
		r := g.get(t, "/"+typ+"?patient="+pid, tok)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", typ, r.status, r.body)
		}
		noWarnings(t, r)
		checkFullURLs(t, g, r)
		got := r.entries("match")
		if len(got) != len(want) {
			t.Fatalf("%s: %d of the upstream's %d", typ, len(got), len(want))
		}
		for _, res := range got {
			id := res["id"].(string)
			if len(id) > 64 {
				t.Fatalf("id %q", id)
			}
			if rr := g.get(t, "/"+typ+"/"+id, tok); rr.status != 200 {
				t.Fatalf("read %s/%s: %d %s", typ, id, rr.status, rr.body)
			}
		}
	}

	ev := g.get(t, "/Patient/"+pid+"/$everything?_count=200", tok)
	if ev.status != 200 {
		t.Fatalf("$everything: %d %s", ev.status, ev.body)
	}
	noWarnings(t, ev)
	checkFullURLs(t, g, ev)

	d := parseDoc(t, g.get(t, "/Patient/"+pid+"/$summary", tok))
	contributed := map[string]bool{}
	for ref := range d.byRef {
		for _, s := range d.provenancesOf(ref) {
			contributed[s] = true
		}
	}
	if !contributed["de-national-ehr"] || len(contributed) != 3 {
		t.Fatalf("$summary from %v", contributed)
	}
	if strings.Contains(string(d.raw), "could not contribute") {
		t.Fatalf("$summary warns: %.3000s", d.raw)
	}
	for _, typ := range sampleTypes {
		rs, _ := orig.Search(context.Background(), typ, url.Values{})
		for _, r := range rs {
			if strings.Contains(string(d.raw)+string(ev.body), longID(typ, r.ID)) {
				t.Fatalf("an upstream id is readable in an answer")
			}
		}
	}
}

// noWarnings asserts that a searchset's outcome says nothing is missing
// (mapping notes may be there).
func noWarnings(t *testing.T, r reply) {
	t.Helper()
	for _, oo := range r.entries("outcome") {
		for _, is := range oo["issue"].([]any) {
			switch code := is.(map[string]any)["code"]; code {
			case "transient", "timeout", "incomplete":
				js, _ := json.Marshal(is)
				t.Fatalf("a source could not contribute: %s", js)
			}
		}
	}
}
