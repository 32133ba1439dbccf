package server

import (
	"bufio"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/config"
)

// thirdPartyServer is a national FHIR server this project did not write:
// Medplum's fhir-router over its in-memory repository, pinned in
// conformance/fhirserver and run by its server.mjs, loaded with fixture
// Bundles from testdata/fhirserver.
type thirdPartyServer struct {
	base  string
	files []string
	cmd   *exec.Cmd
}

// startThirdParty starts one server paging at pageSize entries (skipped or
// failed without node and the package, as nodePackage says), loaded with
// files from testdata/fhirserver or, given as absolute paths, from
// anywhere.
func startThirdParty(t *testing.T, pageSize, linkHost string, files ...string) *thirdPartyServer {
	t.Helper()
	node, dir := nodePackage(t, "fhirserver", "@medplum/fhir-router", "fhirserver")
	s := &thirdPartyServer{}
	args := []string{filepath.Join(dir, "server.mjs"), "--page-size", pageSize}
	if linkHost != "" {
		args = append(args, "--link-host", linkHost)
	}
	for _, f := range files {
		p := f
		if !filepath.IsAbs(f) {
			p = filepath.Join("testdata", "fhirserver", f)
		}
		s.files = append(s.files, p)
		args = append(args, p)
	}
	s.cmd = exec.Command(node, args...)
	s.cmd.Stderr = os.Stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.stop)
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
				ready <- u
			}
		}
	}()
	select {
	case s.base = <-ready:
	case <-time.After(2 * time.Minute):
		t.Fatal("the third-party FHIR server did not start")
	}
	return s
}

func (s *thirdPartyServer) stop() {
	if s.cmd.ProcessState == nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	}
}

// upstream is what the fixtures hold: per patient id, per type, the
// resources that belong to the patient.
type upstreamPatient struct {
	id         string
	identifier string // system|value of its first identifier with a system
	byType     map[string][]map[string]any
}

func readUpstream(t *testing.T, files []string) []*upstreamPatient {
	t.Helper()
	var out []*upstreamPatient
	byID := map[string]*upstreamPatient{}
	var all []map[string]any
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				FullURL  string         `json:"fullUrl"`
				Resource map[string]any `json:"resource"`
			}
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		for _, e := range bundle.Entry {
			r := e.Resource
			all = append(all, r)
			if r["resourceType"] == "Patient" {
				p := &upstreamPatient{id: r["id"].(string), byType: map[string][]map[string]any{}}
				for _, id := range r["identifier"].([]any) {
					idm := id.(map[string]any)
					if sys, ok := idm["system"].(string); ok && p.identifier == "" {
						p.identifier = sys + "|" + idm["value"].(string)
					}
				}
				byID[p.id] = p
				byID["urn:uuid:"+p.id] = p
				if e.FullURL != "" {
					byID[e.FullURL] = p
				}
				out = append(out, p)
			}
		}
	}
	for _, r := range all {
		for _, k := range []string{"subject", "patient"} {
			ref, _ := r[k].(map[string]any)
			s, _ := ref["reference"].(string)
			p := byID[strings.TrimPrefix(s, "Patient/")]
			if p == nil {
				p = byID[s]
			}
			if p != nil {
				typ := r["resourceType"].(string)
				p.byType[typ] = append(p.byType[typ], r)
			}
		}
	}
	return out
}

// searchAll pages through a gateway search and returns its match entries,
// checking that every entry has an absolute fullUrl.
func searchAll(t *testing.T, g *gateway, path, tok string) (entries []map[string]any, warnings []string) {
	t.Helper()
	next := path
	for pages := 0; next != ""; pages++ {
		if pages > 200 {
			t.Fatalf("%s: more than 200 pages", path)
		}
		r := g.get(t, next, tok)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", next, r.status, r.body)
		}
		list, _ := r.json["entry"].([]any)
		for _, e := range list {
			em := e.(map[string]any)
			res := em["resource"].(map[string]any)
			full, _ := em["fullUrl"].(string)
			if s, _ := em["search"].(map[string]any); s["mode"] == "outcome" {
				if !strings.HasPrefix(full, "urn:uuid:") && !strings.HasPrefix(full, g.base+"/") {
					t.Errorf("%s: the OperationOutcome entry has fullUrl %q", path, full)
				}
				for _, is := range res["issue"].([]any) {
					d, _ := is.(map[string]any)["diagnostics"].(string)
					warnings = append(warnings, d)
				}
				continue
			}
			if !strings.HasPrefix(full, g.base+"/") || !strings.HasSuffix(full, "/"+res["id"].(string)) {
				t.Errorf("%s: entry %s has fullUrl %q", path, res["id"], full)
			}
			entries = append(entries, res)
		}
		next = ""
		for _, l := range r.json["link"].([]any) {
			if l.(map[string]any)["relation"] == "next" {
				next = l.(map[string]any)["url"].(string)
			}
		}
	}
	return entries, warnings
}

// TestThirdPartyFHIRServers puts the gateway in front of three national
// servers it did not write (Medplum's fhir-router, in memory), two paging
// at 20 entries and one at 1, loaded with Synthea bundles and IPS
// documents. Every response is parsed by google/fhir's R4 unmarshaller
// (gateway.get), so it validates too.
func TestThirdPartyFHIRServers(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts three node servers")
	}
	// long-ids.json holds a patient whose Patient and clinical records
	// have ids of 48 and 64 characters, as real EHRs mint them.
	de := startThirdParty(t, "20", "", "synthea-blair.json", "synthea-eboni.json", "long-ids.json")
	// The NL server is configured as localhost and writes 127.0.0.1 in
	// its links (a host alias): it must still page fully.
	nl := startThirdParty(t, "1", "127.0.0.1", "synthea-judson.json")
	ua := startThirdParty(t, "20", "", "ips-Bundle-IPS-examples-Bundle-01.json", "ips-Bundle-bundle-no-info-required-sections.json")
	nlBase := strings.Replace(nl.base, "127.0.0.1", "localhost", 1)
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-mp", Country: "DE", Profile: "us-core", Kind: config.KindFHIR, BaseURL: de.base, Timeout: 20 * time.Second},
			{ID: "nl-mp", Country: "NL", Profile: "us-core", Kind: config.KindFHIR, BaseURL: nlBase, Timeout: 60 * time.Second, MaxPages: 500},
			{ID: "ua-mp", Country: "UA", Profile: "ips", Kind: config.KindFHIR, BaseURL: ua.base, Timeout: 20 * time.Second},
		}
		// Paging at 1 entry is some sixty round trips for a patient's
		// Observations, each a full in-memory search in node.
		c.Federation.SourceTimeout = 60 * time.Second
		c.Federation.Deadline = 2 * time.Minute
		c.Cache.Disabled = true
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")

	clinical := []string{"Condition", "AllergyIntolerance", "MedicationStatement", "MedicationRequest", "Immunization",
		"Observation", "Procedure", "DiagnosticReport", "DocumentReference"}
	// Each patient's checks read from one server through the shared
	// gateway: they run side by side (the Dutch server, paging at one
	// entry, is the slow one), and the group ends before a server stops.
	t.Run("patients", func(t *testing.T) {
		for _, src := range []struct {
			id  string
			srv *thirdPartyServer
		}{{"de-mp", de}, {"nl-mp", nl}, {"ua-mp", ua}} {
			for _, p := range readUpstream(t, src.srv.files) {
				t.Run(src.id+"/"+p.id[:min(8, len(p.id))], func(t *testing.T) {
					t.Parallel()
					pats, _ := searchAll(t, g, "/Patient?identifier="+url.QueryEscape(p.identifier), tok)
					var gid string
					for _, pat := range pats {
						if strings.HasPrefix(pat["id"].(string), src.id+".") {
							gid = pat["id"].(string)
						}
					}
					if gid == "" {
						t.Fatalf("patient not found through its identifier (%d results)", len(pats))
					}
					for _, typ := range clinical {
						got, warnings := searchAll(t, g, "/"+typ+"?patient="+url.QueryEscape(gid)+"&_count=50", tok)
						if len(got) != len(p.byType[typ]) {
							t.Errorf("%s: the gateway returned %d, the source holds %d (warnings %v)", typ, len(got), len(p.byType[typ]), warnings)
						}
					}
					// Searches on the same data, evaluated by the gateway,
					// agree with what the fixture says.
					for _, tc := range []struct {
						query string
						want  func(map[string]any) bool
					}{
						{"Observation?category=laboratory", hasCode("category", "laboratory")},
						{"Observation?category=vital-signs", hasCode("category", "vital-signs")},
						{"DiagnosticReport?category=http://terminology.hl7.org/CodeSystem/v2-0074|LAB", hasCode("category", "LAB")},
						{"DiagnosticReport?date=ge2015", dateFrom("effectiveDateTime", "2015")},
						{"Immunization?date=lt2016", func(r map[string]any) bool { return r["occurrenceDateTime"].(string) < "2016" }},
						{"Condition?clinical-status=active", hasCode("clinicalStatus", "active")},
						{"DocumentReference?type=http://loinc.org|18842-5", hasCode("type", "18842-5")},
						{"DocumentReference?category=clinical-note&date=ge2019", func(r map[string]any) bool {
							return hasCode("category", "clinical-note")(r) && r["date"].(string) >= "2019"
						}},
					} {
						typ, q, _ := strings.Cut(tc.query, "?")
						want := 0
						for _, r := range p.byType[typ] {
							if tc.want(r) {
								want++
							}
						}
						got, _ := searchAll(t, g, "/"+typ+"?patient="+url.QueryEscape(gid)+"&"+q, tok)
						if len(got) != want {
							t.Errorf("%s: %d, the fixture has %d", tc.query, len(got), want)
						}
					}
					// Attachments are served through the gateway: no inline
					// content, no link to the national server.
					docs, _ := searchAll(t, g, "/DocumentReference?patient="+url.QueryEscape(gid), tok)
					for _, d := range docs {
						for _, c := range d["content"].([]any) {
							att := c.(map[string]any)["attachment"].(map[string]any)
							u, _ := att["url"].(string)
							if att["data"] != nil || (u != "" && !strings.HasPrefix(u, g.base+"/DocumentReference/"+d["id"].(string)+"/$attachment?")) {
								t.Errorf("DocumentReference %s passes on its attachment: %v", d["id"], att)
							}
						}
					}
					// The IPS summary's Results section holds the
					// patient's DiagnosticReports.
					if len(p.byType["DiagnosticReport"]) > 0 {
						r := g.get(t, "/Patient/"+url.PathEscape(gid)+"/$summary", tok)
						if r.status != 200 {
							t.Fatalf("$summary: %d %s", r.status, r.body)
						}
						if n := strings.Count(string(r.body), `"resourceType":"DiagnosticReport"`); n == 0 {
							t.Errorf("$summary has no DiagnosticReport; the source holds %d", len(p.byType["DiagnosticReport"]))
						}
					}
				})
			}
		}
	})

	t.Run("long ids", func(t *testing.T) { checkLongIDs(t, g, tok, de) })
	t.Run("migrant", checkMigrantSummary)

	// A source that stops: the others still answer, with a warning.
	p := readUpstream(t, de.files)[0]
	ua.stop()
	got, warnings := searchAll(t, g, "/Patient?identifier="+url.QueryEscape(p.identifier), tok)
	if len(got) == 0 {
		t.Fatal("a stopped source took the others' results with it")
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "ua-mp") }) {
		t.Errorf("no warning names the stopped source: %v", warnings)
	}
}

func hasCode(element, code string) func(map[string]any) bool {
	return func(r map[string]any) bool {
		var concepts []any
		switch v := r[element].(type) {
		case []any:
			concepts = v
		case map[string]any:
			concepts = []any{v}
		}
		for _, c := range concepts {
			for _, cd := range c.(map[string]any)["coding"].([]any) {
				if cd.(map[string]any)["code"] == code {
					return true
				}
			}
		}
		return false
	}
}

func dateFrom(element, from string) func(map[string]any) bool {
	return func(r map[string]any) bool {
		s, _ := r[element].(string)
		return s >= from
	}
}

// checkLongIDs: every record with any legal id is returned. The fixture
// long-ids.json gives a Patient a 64-character id and its records ids of
// 48 and 64 characters ([A-Za-z0-9\-\.]); each is found by search, read
// back through the gateway under the id the search gave, and the patient's
// $summary holds them.
func checkLongIDs(t *testing.T, g *gateway, tok string, src *thirdPartyServer) {
	var p *upstreamPatient
	for _, up := range readUpstream(t, src.files) {
		if len(up.id) == 64 {
			p = up
		}
	}
	if p == nil {
		t.Fatal("long-ids.json has no Patient with a 64-character id")
	}
	pats, warnings := searchAll(t, g, "/Patient?identifier="+url.QueryEscape(p.identifier), tok)
	if len(pats) != 1 {
		t.Fatalf("Patient search: %d results, want 1 (warnings %v)", len(pats), warnings)
	}
	gid := pats[0]["id"].(string)
	if !strings.HasPrefix(gid, "de-mp.") || strings.Contains(gid, p.id) {
		t.Errorf("gateway id %q: want an opaque de-mp id", gid)
	}
	if r := g.get(t, "/Patient/"+url.PathEscape(gid), tok); r.status != 200 || r.json["id"] != gid {
		t.Fatalf("read Patient/%s: %d %.300s", gid, r.status, r.body)
	}
	text := func(r map[string]any) string {
		for _, k := range []string{"code", "vaccineCode"} {
			if c, ok := r[k].(map[string]any); ok {
				s, _ := c["text"].(string)
				return s
			}
		}
		return ""
	}
	all := map[string]bool{}
	for _, typ := range []string{"Condition", "Immunization", "Observation", "DiagnosticReport", "Procedure"} {
		want := map[string]bool{}
		for _, r := range p.byType[typ] {
			if n := len(r["id"].(string)); n != 48 && n != 64 {
				t.Fatalf("fixture %s/%s: id of %d characters", typ, r["id"], n)
			}
			want[text(r)] = true
		}
		if len(want) == 0 {
			t.Fatalf("long-ids.json has no %s", typ)
		}
		got, warnings := searchAll(t, g, "/"+typ+"?patient="+url.QueryEscape(gid), tok)
		if len(got) != len(p.byType[typ]) || slices.ContainsFunc(warnings, lostRecord) {
			t.Errorf("%s search: %d results, the source holds %d (warnings %v)", typ, len(got), len(p.byType[typ]), warnings)
		}
		for _, r := range got {
			id := r["id"].(string)
			if !want[text(r)] {
				t.Errorf("%s/%s is not one of the fixture's records (%q)", typ, id, text(r))
			}
			all[typ+"/"+id] = true
			back := g.get(t, "/"+typ+"/"+url.PathEscape(id), tok)
			if back.status != 200 || back.json["id"] != id || text(back.json) != text(r) {
				t.Errorf("read %s/%s: %d %.300s", typ, id, back.status, back.body)
			}
		}
	}
	d := parseDoc(t, g.get(t, "/Patient/"+url.PathEscape(gid)+"/$summary", tok))
	for ref := range all {
		if d.byRef[ref] == nil {
			t.Errorf("$summary lacks %s", ref)
		}
	}
	if d.outcome != nil {
		for _, is := range d.outcome["issue"].([]any) {
			im := is.(map[string]any)
			switch im["code"] {
			case "transient", "incomplete", "processing", "exception", "invalid", "not-found":
				t.Errorf("$summary: %v", im)
			}
			if im["severity"] == "error" || im["severity"] == "fatal" {
				t.Errorf("$summary: %v", im)
			}
		}
	}
}

// lostRecord tells whether a search warning says a record or a source's
// answer was lost (rather than noting how a code was mapped).
func lostRecord(w string) bool {
	for _, s := range []string{"could not", "dropped", "invalid", "skipped", "not returned"} {
		if strings.Contains(w, s) && !strings.Contains(w, "identifier registry") {
			return true
		}
	}
	return false
}

// checkMigrantSummary: the same migrant (Amina, the sample data's
// Ukrainian passport holder, conformance/examples de-sample and ua-sample)
// has a record on a German and on a Ukrainian Medplum server. A German
// clinician's $summary anchored on either country's record holds entries
// from both sources, as the Provenance of each entry shows, and so does
// $everything.
func checkMigrantSummary(t *testing.T) {
	de := startThirdParty(t, "20", "", "migrant-de-amina.json", "migrant-de-organizations.json")
	ua := startThirdParty(t, "20", "", "migrant-ua-amina-ips.json")
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-mig", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: de.base, Timeout: 20 * time.Second},
			{ID: "ua-mig", Country: "UA", Profile: "ips", Kind: config.KindFHIR, BaseURL: ua.base, Timeout: 20 * time.Second},
		}
		c.Federation.SourceTimeout = 30 * time.Second
		c.Cache.Disabled = true
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	pats, warnings := searchAll(t, g, "/Patient?identifier="+url.QueryEscape(aminaPassport), tok)
	bySource := map[string]string{}
	for _, p := range pats {
		src, _, _ := strings.Cut(p["id"].(string), ".")
		bySource[src] = p["id"].(string)
	}
	if len(bySource) != 2 || bySource["de-mig"] == "" || bySource["ua-mig"] == "" {
		t.Fatalf("passport search found %v (warnings %v), want one record on each server", bySource, warnings)
	}
	for _, src := range []string{"de-mig", "ua-mig"} {
		pid := bySource[src]
		t.Run(src, func(t *testing.T) {
			d := parseDoc(t, g.get(t, "/Patient/"+url.PathEscape(pid)+"/$summary", tok))
			contributed := map[string]int{}
			for ref := range d.byRef {
				if strings.HasPrefix(ref, "Patient/") {
					continue
				}
				for _, s := range d.provenancesOf(ref) {
					contributed[s]++
				}
			}
			if contributed["de-mig"] == 0 || contributed["ua-mig"] == 0 || len(contributed) != 2 {
				t.Errorf("$summary anchored on %s has entries from %v, want both servers", src, contributed)
			}
			ev := g.get(t, "/Patient/"+url.PathEscape(pid)+"/$everything?_type=Patient&_count=50", tok)
			if ev.status != 200 {
				t.Fatalf("$everything: %d %s", ev.status, ev.body)
			}
			if got := sourcesOf(ev.entries("match")); got["de-mig"] != 1 || got["ua-mig"] != 1 || len(got) != 2 {
				t.Errorf("$everything anchored on %s linked %v", src, got)
			}
		})
	}
}
