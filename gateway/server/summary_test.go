package server

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/config"
)

// summarySources are four national FHIR servers: the migrant's country of
// origin (UA, IPS documents), transit (NL, nl-core) and destination (DE,
// de-basis), which the DE requester's agreements cover, and a US server
// with no agreement, which must never be contacted.
type summarySources struct {
	ua, nl, de, us *nationalServer
}

func newSummarySources(t testing.TB) *summarySources {
	t.Helper()
	return &summarySources{
		ua: newNationalServer(t, "ua-sample"), nl: newNationalServer(t, "nl-sample"),
		de: newNationalServer(t, "de-sample"), us: newNationalServer(t, "us-sample"),
	}
}

// config points the gateway at the four servers; cache chooses whether
// the in-process cache is on.
func (s *summarySources) config(cache bool, timeout time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "ua-ehealth", Country: "UA", Profile: "ips", Kind: config.KindFHIR, BaseURL: s.ua.URL, Timeout: timeout},
			{ID: "nl-lsp", Country: "NL", Profile: "nl-core", Kind: config.KindFHIR, BaseURL: s.nl.URL, Timeout: timeout},
			{ID: "de-kbv", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: s.de.URL, Timeout: timeout},
			{ID: "us-ehr", Country: "US", Profile: "us-core", Kind: config.KindFHIR, BaseURL: s.us.URL, Timeout: timeout},
		}
		c.Federation.SourceTimeout = timeout
		c.Cache.Disabled = !cache
	}
}

func (s *summarySources) requests() int64 {
	return s.ua.requests.Load() + s.nl.requests.Load() + s.de.requests.Load() + s.us.requests.Load()
}

// doc is a $summary answer taken apart.
type doc struct {
	raw         []byte
	bundle      map[string]any
	composition map[string]any
	byRef       map[string]map[string]any
	provenances []map[string]any
	outcome     map[string]any
}

func parseDoc(t testing.TB, r reply) doc {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	d := doc{raw: r.body, bundle: r.json, byRef: map[string]map[string]any{}}
	if r.json["resourceType"] != "Bundle" || r.json["type"] != "document" {
		t.Fatalf("not a document Bundle: %.300s", r.body)
	}
	for i, e := range r.json["entry"].([]any) {
		res := e.(map[string]any)["resource"].(map[string]any)
		switch rt := res["resourceType"].(string); {
		case i == 0:
			if rt != "Composition" {
				t.Fatalf("first entry is a %s", rt)
			}
			d.composition = res
		case rt == "Provenance":
			d.provenances = append(d.provenances, res)
		case rt == "OperationOutcome":
			d.outcome = res
		default:
			d.byRef[rt+"/"+res["id"].(string)] = res
		}
	}
	return d
}

// conforms checks the document against the MHP and IPS rules the profile
// checker knows, every MHP profile required where one is meant.
func (d doc) conforms(t testing.TB) {
	t.Helper()
	ck, err := conformance.NewChecker(conformance.Options{Require: true})
	if err != nil {
		t.Fatal(err)
	}
	if issues := ck.Check(d.raw); conformance.HasErrors(issues) {
		t.Fatalf("the summary does not conform:\n%v", issues)
	}
}

// sectionCodes maps LOINC section codes to the section.
func (d doc) sections() map[string]map[string]any {
	out := map[string]map[string]any{}
	for _, s := range d.composition["section"].([]any) {
		sec := s.(map[string]any)
		code := sec["code"].(map[string]any)["coding"].([]any)[0].(map[string]any)["code"].(string)
		out[code] = sec
	}
	return out
}

// provenancesOf returns the sources the Provenances of one entry name.
func (d doc) provenancesOf(ref string) []string {
	var out []string
	for _, p := range d.provenances {
		if p["target"].([]any)[0].(map[string]any)["reference"] != ref {
			continue
		}
		what := p["entity"].([]any)[0].(map[string]any)["what"].(map[string]any)
		sys := what["identifier"].(map[string]any)["system"].(string)
		out = append(out, sys[strings.LastIndex(sys, "/")+1:])
	}
	return out
}

func (d doc) issues() string {
	if d.outcome == nil {
		return ""
	}
	b, _ := json.Marshal(d.outcome)
	return string(b)
}

// upstreamIDs are the national ids of every sample resource: none may
// appear in a document (gateway ids are sealed).
func upstreamIDs(t testing.TB) []string {
	t.Helper()
	var ids []string
	re := regexp.MustCompile(`"id":\s*"([0-9a-f-]{36})"`)
	err := fs.WalkDir(examples.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".json") {
			return err
		}
		b, err := fs.ReadFile(examples.FS, path)
		for _, m := range re.FindAllSubmatch(b, -1) {
			ids = append(ids, string(m[1]))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

const vaccineCOVID = "http://snomed.info/sct|1119349007"

func TestSummaryCrossBorder(t *testing.T) {
	t.Parallel()
	srcs := newSummarySources(t)
	g := startGateway(t, srcs.config(true, 2*time.Second), Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")

	d := parseDoc(t, g.get(t, "/Patient/$summary?identifier="+url.QueryEscape(aminaPassport), tok))
	d.conforms(t)
	if srcs.us.requests.Load() != 0 {
		t.Fatalf("the US source has no agreement with DE but was contacted %d times", srcs.us.requests.Load())
	}
	if strings.Contains(string(d.raw), "us-ehr") {
		t.Fatal("the document mentions the US source")
	}

	comp := d.composition
	if c := comp["type"].(map[string]any)["coding"].([]any)[0].(map[string]any); c["code"] != "60591-5" || c["system"] != "http://loinc.org" {
		t.Fatalf("Composition.type %v", c)
	}
	secs := d.sections()
	for _, code := range []string{"11450-4", "48765-2", "10160-0", "11369-6", "30954-2", "47519-4"} {
		sec, ok := secs[code]
		if !ok {
			t.Fatalf("section %s missing", code)
		}
		if _, ok := sec["text"].(map[string]any)["div"].(string); !ok {
			t.Fatalf("section %s has no narrative", code)
		}
		if sec["entry"] == nil && sec["emptyReason"] == nil {
			t.Fatalf("section %s has neither entries nor emptyReason", code)
		}
	}

	// Every entry comes from a permitted source and has a Provenance to
	// its national original; all three sources contributed.
	contributed := map[string]bool{}
	for ref := range d.byRef {
		provs := d.provenancesOf(ref)
		if len(provs) == 0 {
			t.Fatalf("%s has no Provenance", ref)
		}
		for _, s := range provs {
			contributed[s] = true
		}
	}
	for _, s := range []string{"ua-ehealth", "nl-lsp", "de-kbv"} {
		if !contributed[s] {
			t.Fatalf("nothing from %s: %v", s, contributed)
		}
	}
	if len(contributed) != 3 {
		t.Fatalf("contributors %v", contributed)
	}
	for _, id := range upstreamIDs(t) {
		if strings.Contains(string(d.raw), id) {
			t.Fatalf("the document holds the national id %s", id)
		}
	}

	// No duplicate immunizations; the 2021-09-14 dose recorded in UA and
	// NL is one entry with both Provenances.
	seen := map[string]string{}
	var sharedDose string
	for ref, res := range d.byRef {
		if res["resourceType"] != "Immunization" {
			continue
		}
		date := res["occurrenceDateTime"].(string)[:10]
		for _, c := range res["vaccineCode"].(map[string]any)["coding"].([]any) {
			cd := c.(map[string]any)
			key := cd["system"].(string) + "|" + cd["code"].(string) + "@" + date
			if prev, dup := seen[key]; dup {
				t.Fatalf("%s and %s are the same vaccination", prev, ref)
			}
			seen[key] = ref
		}
	}
	sharedDose = seen[vaccineCOVID+"@2021-09-14"]
	if sharedDose == "" {
		t.Fatal("the 2021-09-14 COVID-19 dose is missing")
	}
	provs := d.provenancesOf(sharedDose)
	if len(provs) != 2 || !(slices.Contains(provs, "ua-ehealth") && slices.Contains(provs, "nl-lsp")) {
		t.Fatalf("the shared dose has Provenances from %v, want ua-ehealth and nl-lsp", provs)
	}
	imm := secs["11369-6"]["entry"].([]any)
	if len(imm) != 5 {
		t.Fatalf("want 5 distinct vaccinations (UA 3 + DE 1 + NL 2 - 1 shared), got %d", len(imm))
	}

	// One Patient, merged: subject of the Composition, with the passport
	// and the gateway pseudonym; both Cyrillic and Latin names kept.
	var patient map[string]any
	for ref, res := range d.byRef {
		if res["resourceType"] == "Patient" {
			if patient != nil {
				t.Fatal("more than one Patient")
			}
			patient = res
			if comp["subject"].(map[string]any)["reference"] != ref {
				t.Fatalf("subject %v, Patient %s", comp["subject"], ref)
			}
		}
	}
	pj := string(mustMarshal(t, patient))
	for _, want := range []string{"FT482913", conformance.SIDGatewayPseudonym, "Сеітумерова", "Seitumerova", `"birthDate":"1991-03-14"`} {
		if !strings.Contains(pj, want) {
			t.Fatalf("merged Patient lacks %s: %s", want, pj)
		}
	}
	// National identifiers pass only to their own jurisdiction: the Dutch
	// BSN stays out of a document for a German requester.
	if strings.Contains(pj, "bsn") || strings.Contains(pj, "999991383") {
		t.Fatalf("a Dutch national identifier reached a DE requester: %s", pj)
	}
	if got := len(provsOfType(d, "Patient")); got != 3 {
		t.Fatalf("the merged Patient has %d Provenances, want one per source", got)
	}

	// High-water mark and the agreement's refrain label on the Bundle.
	sec := d.bundle["meta"].(map[string]any)["security"].([]any)
	conf := sec[0].(map[string]any)
	if conf["system"] != "http://terminology.hl7.org/CodeSystem/v3-Confidentiality" || !slices.Contains([]string{"N", "R", "V"}, conf["code"].(string)) {
		t.Fatalf("meta.security %v", sec)
	}
	if !strings.Contains(string(mustMarshal(t, sec)), "NORDSCLCDS") {
		t.Fatalf("the agreements' refrain label is not carried to the Bundle: %v", sec)
	}
	if comp["confidentiality"] != conf["code"] {
		t.Fatalf("Composition.confidentiality %v, Bundle %v", comp["confidentiality"], conf["code"])
	}

	// The instance level gives the same person, subject = the id asked.
	pid := strings.TrimPrefix(comp["subject"].(map[string]any)["reference"].(string), "Patient/")
	d2 := parseDoc(t, g.get(t, "/Patient/"+pid+"/$summary", tok))
	d2.conforms(t)
	if d2.composition["subject"].(map[string]any)["reference"] != "Patient/"+pid {
		t.Fatalf("instance-level subject %v", d2.composition["subject"])
	}
	if len(d2.byRef) != len(d.byRef) {
		t.Fatalf("instance level %d entries, type level %d", len(d2.byRef), len(d.byRef))
	}

	// Warm cache: asking again contacts no source.
	before := srcs.requests()
	parseDoc(t, g.get(t, "/Patient/"+pid+"/$summary", tok))
	if after := srcs.requests(); after != before {
		t.Fatalf("a warm summary made %d source requests", after-before)
	}
	// Cache-Control: no-cache goes to the sources again.
	parseDoc(t, g.get(t, "/Patient/"+pid+"/$summary", tok, "Cache-Control", "no-cache"))
	if srcs.requests() == before {
		t.Fatal("no-cache was served from the cache")
	}
	if srcs.us.requests.Load() != 0 {
		t.Fatal("the US source was contacted")
	}

	// Audited as the operation, with the patient.
	auditor := g.token(t, "DE", "auditor", "HCOMPL")
	ae := g.get(t, "/AuditEvent?patient=Patient/"+pid, auditor)
	if ae.status != 200 || !strings.Contains(string(ae.body), "summary") {
		t.Fatalf("no AuditEvent for the summary: %d %s", ae.status, ae.body)
	}
}

func provsOfType(d doc, typ string) []string {
	var out []string
	for ref := range d.byRef {
		if strings.HasPrefix(ref, typ+"/") {
			out = append(out, d.provenancesOf(ref)...)
		}
	}
	return out
}

func TestSummaryPartialFailure(t *testing.T) {
	t.Parallel()
	srcs := newSummarySources(t)
	g := startGateway(t, srcs.config(false, sourceTimeout), Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	typeLevel := "/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport)
	pid := ""
	{
		d := parseDoc(t, g.get(t, typeLevel, tok))
		pid = strings.TrimPrefix(d.composition["subject"].(map[string]any)["reference"].(string), "Patient/")
	}
	tests := []struct {
		name       string
		ua, nl, de string
		path       string
		status     int
		warn       string
		present    []string
		absent     []string
	}{
		{name: "transit answers 500", nl: "500", path: typeLevel, status: 200,
			warn: "source nl-lsp (NL) could not contribute", present: []string{"ua-ehealth", "de-kbv"}, absent: []string{"nl-lsp."}},
		{name: "origin too slow", ua: "slow", path: typeLevel, status: 200,
			warn: "source ua-ehealth (UA) could not contribute (timeout)", present: []string{"nl-lsp", "de-kbv"}, absent: []string{"ua-ehealth."}},
		{name: "transit sends garbage", nl: "garbage", path: "/Patient/" + pid + "/$summary", status: 200,
			warn: "source nl-lsp (NL) could not contribute (invalid-response)", present: []string{"ua-ehealth", "de-kbv"}},
		{name: "all down", ua: "500", nl: "500", de: "500", path: typeLevel, status: 502},
		{name: "all too slow", ua: "slow", nl: "slow", de: "slow", path: typeLevel, status: 504},
		{name: "the patient's own source down", de: "500", path: "/Patient/" + pid + "/$summary", status: 502},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srcs.ua.mode.Store(tt.ua)
			srcs.nl.mode.Store(tt.nl)
			srcs.de.mode.Store(tt.de)
			t.Cleanup(func() { srcs.ua.mode.Store(""); srcs.nl.mode.Store(""); srcs.de.mode.Store("") })
			r := g.get(t, tt.path, tok)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %.500s", r.status, tt.status, r.body)
			}
			if strings.Contains(string(r.body), "FT482913") && tt.status != 200 {
				t.Fatal("an error quotes the identifier")
			}
			if tt.status != 200 {
				code := r.outcomeCode(t)
				if (tt.status == 502 && code != "transient") || (tt.status == 504 && code != "timeout") {
					t.Fatalf("code %s for %d", code, tt.status)
				}
				return
			}
			d := parseDoc(t, r)
			d.conforms(t)
			if !strings.Contains(d.issues(), tt.warn) {
				t.Fatalf("no warning %q in %s", tt.warn, d.issues())
			}
			// The warning names the source, never the patient.
			for _, phi := range []string{"Amina", "Seitumerova", "FT482913", "1991-03-14"} {
				if strings.Contains(d.issues(), phi) {
					t.Fatalf("the warning names the patient (%s): %s", phi, d.issues())
				}
			}
			// Every section says what is missing, in the narrative too.
			for code, sec := range d.sections() {
				if !strings.Contains(sec["text"].(map[string]any)["div"].(string), "may be incomplete") {
					t.Fatalf("section %s does not say the summary may be incomplete", code)
				}
			}
			got := map[string]bool{}
			for ref := range d.byRef {
				for _, s := range d.provenancesOf(ref) {
					got[s] = true
				}
				for _, a := range tt.absent {
					if strings.Contains(ref, "/"+a) {
						t.Fatalf("%s from a failed source", ref)
					}
				}
			}
			for _, p := range tt.present {
				if !got[p] {
					t.Fatalf("nothing from healthy source %s: %v", p, got)
				}
			}
		})
	}
	if srcs.us.requests.Load() != 0 {
		t.Fatal("the US source was contacted")
	}
}

func TestSummaryLanguage(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	path := "/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport)
	tests := []struct {
		accept, lang, problems, immunizations string
	}{
		{"", "en", "Problem list", "Immunizations"},
		{"de-DE,de;q=0.9,en;q=0.8", "de", "Probleme und Diagnosen", "Impfungen"},
		{"nl", "nl", "Problemen", "Vaccinaties"},
		{"uk-UA, en;q=0.5", "uk", "Проблеми зі здоров'ям", "Щеплення"},
		{"fr-FR, fr;q=0.9", "en", "Problem list", "Immunizations"},
	}
	for _, tt := range tests {
		t.Run(tt.accept, func(t *testing.T) {
			var hdr []string
			if tt.accept != "" {
				hdr = []string{"Accept-Language", tt.accept}
			}
			r := g.get(t, path, tok, hdr...)
			d := parseDoc(t, r)
			d.conforms(t)
			if got := r.header.Get("Content-Language"); got != tt.lang {
				t.Fatalf("Content-Language %q, want %s", got, tt.lang)
			}
			if d.composition["language"] != tt.lang {
				t.Fatalf("Composition.language %v", d.composition["language"])
			}
			secs := d.sections()
			if secs["11450-4"]["title"] != tt.problems || secs["11369-6"]["title"] != tt.immunizations {
				t.Fatalf("titles %q, %q", secs["11450-4"]["title"], secs["11369-6"]["title"])
			}
			div := secs["11369-6"]["text"].(map[string]any)["div"].(string)
			if !strings.Contains(div, fmt.Sprintf(`lang="%s"`, tt.lang)) {
				t.Fatalf("narrative not marked %s: %s", tt.lang, div)
			}
			// Clinical text stays as the source wrote it.
			if !strings.Contains(div, "Comirnaty") {
				t.Fatalf("the vaccine is missing from the narrative: %s", div)
			}
		})
	}
}

func TestSummaryRequests(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	ident := url.QueryEscape(aminaPassport)
	d := parseDoc(t, g.get(t, "/Patient/$summary?identifier="+ident, tok))
	pid := strings.TrimPrefix(d.composition["subject"].(map[string]any)["reference"].(string), "Patient/")

	tests := []struct {
		name, path string
		status     int
		code       string
	}{
		{"MHP profile", "/Patient/" + pid + "/$summary?profile=" + url.QueryEscape(conformance.ProfileComposition), 200, ""},
		{"MHP profile with its version", "/Patient/" + pid + "/$summary?profile=" + url.QueryEscape(conformance.ProfileComposition+"|0.1.0"), 200, ""},
		{"IPS profile", "/Patient/" + pid + "/$summary?profile=" + url.QueryEscape("http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips|2.0.1"), 200, ""},
		{"unknown profile", "/Patient/" + pid + "/$summary?profile=" + url.QueryEscape("http://example.org/Composition-x"), 400, "not-supported"},
		{"MHP profile of another version", "/Patient/" + pid + "/$summary?profile=" + url.QueryEscape(conformance.ProfileComposition+"|9.9.9"), 400, "not-supported"},
		{"profile twice", "/Patient/" + pid + "/$summary?profile=a&profile=b", 400, "invalid"},
		{"type level without identifier", "/Patient/$summary", 400, "required"},
		{"identifier at instance level", "/Patient/" + pid + "/$summary?identifier=" + ident, 400, "invalid"},
		{"identifier without system", "/Patient/$summary?identifier=FT482913", 400, "invalid"},
		{"status-revealing identifier system", "/Patient/$summary?identifier=" + url.QueryEscape("http://nphies.sa/identifier/iqama|123"), 400, "invalid"},
		{"unknown patient", "/Patient/de-sample.AAAAAAAAAAAAAAAAAAAAAAAAAAAA/$summary", 404, "not-found"},
		{"nobody holds the identifier", "/Patient/$summary?identifier=" + url.QueryEscape("http://hl7.org/fhir/sid/passport-UKR|XX000000"), 404, "not-found"},
		{"$everything is instance level only", "/Patient/$everything", 404, "not-supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := g.get(t, tt.path, tok)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %.400s", r.status, tt.status, r.body)
			}
			if tt.status == 200 {
				d := parseDoc(t, r)
				d.conforms(t)
				if strings.Contains(tt.name, "IPS") && !strings.Contains(string(mustMarshal(t, d.composition["meta"])), "Composition-uv-ips") {
					t.Fatalf("asked for IPS, the Composition does not claim it: %v", d.composition["meta"])
				}
				return
			}
			if code := r.outcomeCode(t); code != tt.code {
				t.Fatalf("code %s, want %s", code, tt.code)
			}
		})
	}

	// POST with a Parameters body, identifier as an Identifier.
	body := `{"resourceType":"Parameters","parameter":[{"name":"identifier","valueIdentifier":{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"FT482913"}},{"name":"profile","valueCanonical":"` + conformance.ProfileComposition + `"}]}`
	pd := parseDoc(t, g.post(t, "/Patient/$summary", tok, "application/fhir+json", []byte(body)))
	pd.conforms(t)
	if pd.composition["subject"].(map[string]any)["reference"] != "Patient/"+pid {
		t.Fatalf("POST summary of %v", pd.composition["subject"])
	}
	if r := g.post(t, "/Patient/$summary", tok, "application/fhir+json", []byte(`{"resourceType":"Parameters","parameter":[{"name":"profile","valueCanonical":"http://example.org/x"}]}`)); r.status != 400 {
		t.Fatalf("POST with a bad profile: %d", r.status)
	}

	// No purpose of use: refused before any source is asked.
	if r := g.get(t, "/Patient/$summary?identifier="+ident, g.token(t, "DE", "clinician", "")); r.status != 403 || r.outcomeCode(t) != "forbidden" {
		t.Fatalf("no purpose: %d %s", r.status, r.body)
	}
	// A requester from a country without agreements gets nothing.
	if r := g.get(t, "/Patient/"+pid+"/$summary", g.token(t, "US", "clinician", "TREAT")); r.status != 403 {
		t.Fatalf("US requester: %d %s", r.status, r.body)
	}

	// The CapabilityStatement advertises both operations once each.
	md := g.get(t, "/metadata", "")
	var cs struct {
		Rest []struct {
			Resource []struct {
				Type      string
				Operation []struct{ Name, Definition string }
			}
		}
	}
	if err := json.Unmarshal(md.body, &cs); err != nil {
		t.Fatal(err)
	}
	ops := map[string]string{}
	n := 0
	for _, r := range cs.Rest[0].Resource {
		if r.Type == "Patient" {
			for _, op := range r.Operation {
				ops[op.Name] = op.Definition
				n++
			}
		}
	}
	if ops["summary"] != conformance.OpSummary || ops["everything"] != conformance.OpEverything || n != len(ops) {
		t.Fatalf("Patient operations %v (%d listed)", ops, n)
	}
}

func TestEverythingPaged(t *testing.T) {
	t.Parallel()
	srcs := newSummarySources(t)
	g := startGateway(t, srcs.config(true, 2*time.Second), Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	d := parseDoc(t, g.get(t, "/Patient/$summary?identifier="+url.QueryEscape(aminaPassport), tok))
	pid := strings.TrimPrefix(d.composition["subject"].(map[string]any)["reference"].(string), "Patient/")

	next := "/Patient/" + pid + "/$everything?_count=7"
	var matches []map[string]any
	provs := 0
	total := -1
	for pages := 0; next != "" && pages < 20; pages++ {
		r := g.get(t, next, tok)
		if r.status != 200 || r.json["type"] != "searchset" {
			t.Fatalf("page %d: %d %.300s", pages, r.status, r.body)
		}
		if ck := conformance.Check(r.body); conformance.HasErrors(ck) {
			t.Fatalf("page %d: %v", pages, ck)
		}
		checkFullURLs(t, g, r)
		total = int(r.json["total"].(float64))
		page := r.entries("match")
		if len(page) > 7 {
			t.Fatalf("page of %d", len(page))
		}
		matches = append(matches, page...)
		provs += len(r.entries("include"))
		next = ""
		for _, l := range r.json["link"].([]any) {
			if lm := l.(map[string]any); lm["relation"] == "next" {
				next = lm["url"].(string)
				if !strings.Contains(next, "/Patient/"+pid+"/$everything") {
					t.Fatalf("next link %s", next)
				}
			}
		}
	}
	if len(matches) != total || total == 0 {
		t.Fatalf("paged %d entries, total %d", len(matches), total)
	}
	if provs != len(matches) {
		t.Fatalf("%d Provenances for %d entries", provs, len(matches))
	}
	types := map[string]int{}
	covid := 0
	seen := map[string]bool{}
	for _, m := range matches {
		id := m["id"].(string)
		if seen[id] {
			t.Fatalf("%s on two pages", id)
		}
		seen[id] = true
		types[m["resourceType"].(string)]++
		if m["resourceType"] == "Immunization" && strings.HasPrefix(m["occurrenceDateTime"].(string), "2021-09-14") {
			covid++
		}
	}
	// Nothing is merged: each source's Patient, and the shared dose as
	// each country recorded it.
	if types["Patient"] != 3 || covid != 2 {
		t.Fatalf("types %v, 2021-09-14 doses %d", types, covid)
	}
	if srcs.us.requests.Load() != 0 {
		t.Fatal("the US source was contacted")
	}
	// _type narrows what is returned.
	r := g.get(t, "/Patient/"+pid+"/$everything?_type=Immunization&_count=50", tok)
	got := map[string]int{}
	for _, m := range r.entries("match") {
		got[m["resourceType"].(string)]++
	}
	if r.status != 200 || got["Immunization"] != 6 || got["Patient"] != 3 || len(got) != 2 {
		t.Fatalf("_type=Immunization: %d %v", r.status, got)
	}
	for _, bad := range []string{"_count=0", "_count=x", "_offset=-1", "_type=Nope"} {
		if r := g.get(t, "/Patient/"+pid+"/$everything?"+bad, tok); r.status != 400 {
			t.Fatalf("%s: %d", bad, r.status)
		}
	}
}

// TestFHIRKitSummary drives $summary and $everything with fhir-kit-client
// (conformance/clients/fhirkit-summary.mjs), a third-party FHIR client.
func TestFHIRKitSummary(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	out := runClient(t, "fhirkit-summary.mjs", "MHG_BASE="+g.base, "MHG_TOKEN="+tok, "MHG_IDENTIFIER="+aminaPassport,
		"MHG_PROFILE="+conformance.ProfileComposition, "MHG_LANGUAGE=de")
	var got struct {
		Summary    json.RawMessage
		Instance   json.RawMessage
		Post       json.RawMessage
		Operation  struct{ Summary, Everything string }
		Pages      []int
		BadProfile struct {
			Status       int
			ResourceType string
			Code         string
		}
		Error any
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client output: %v\n%s", err, out)
	}
	if got.Error != nil {
		t.Fatalf("client error: %v", got.Error)
	}
	for name, b := range map[string]json.RawMessage{"type level": got.Summary, "instance level": got.Instance, "POST": got.Post} {
		d := parseDoc(t, reply{status: 200, body: b, json: jsonObject(t, b)})
		d.conforms(t)
		if d.composition["language"] != "de" {
			t.Fatalf("%s: language %v", name, d.composition["language"])
		}
	}
	if got.Operation.Summary != conformance.OpSummary || got.Operation.Everything != conformance.OpEverything {
		t.Fatalf("operations in the CapabilityStatement: %+v", got.Operation)
	}
	if len(got.Pages) < 2 {
		t.Fatalf("$everything pages %v", got.Pages)
	}
	if got.BadProfile.Status != 400 || got.BadProfile.ResourceType != "OperationOutcome" {
		t.Fatalf("bad profile %+v", got.BadProfile)
	}
}

func jsonObject(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
