package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/fstest"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/source"
)

// The metamorphic non-discrimination suite through the whole gateway
// (WHA61.17: no distinction by sex, age, religion, nationality or race).
//
// Real sample patients of five national profiles are served by test FHIR
// servers. Each is re-served in variants identical except for protected
// attributes: sex and gender (with their extensions), birth date (full,
// partial, unknown), religion, nationality and citizenship, country of
// birth, race, ethnicity and indigenous status, language and interpreter
// need, arrival. The same session runs through HTTP for clinicians of five
// countries (treatment; emergency treatment with break-the-glass), a legal
// requester, a researcher and an auditor, over every route (search by
// identifier, read, $everything, $summary, the audit trail); each answer
// (status, released resources by type, rule ids) and each AuditEvent
// (outcome, purposes, decisions and their rule ids, released counts) must
// equal the base patient's. ndPlan says which variant meets which part of
// the session: all of it when every attribute changes at once.
//
// The gateway ids of the variants equal the base's (the same source and
// upstream ids), so the session is the same request for request.

// ndSource is a national FHIR server whose data the suite swaps between
// variants of its patients.
type ndSource struct {
	id, country, profile string
	// files are the base data, by file name.
	files map[string][]byte
	// patient is the upstream id of the session's patient, identifier a
	// system|value that finds it.
	patient, identifier string
	cur                 atomic.Pointer[source.Bundle]
	srv                 *nationalServer
	// base and baseGender are the unchanged data, opened once.
	base       *source.Bundle
	baseGender string
}

func newNDSource(t testing.TB, id, country, profile, dir, patient, identifier string, names ...string) *ndSource {
	t.Helper()
	s := &ndSource{id: id, country: country, profile: profile, files: map[string][]byte{}, patient: patient, identifier: identifier}
	var fsys fs.FS = examples.FS
	name, builtin := strings.CutPrefix(dir, config.BuiltinPrefix)
	if !builtin {
		fsys, name = os.DirFS(dir), "."
	}
	for _, n := range names {
		b, err := fs.ReadFile(fsys, path.Join(name, n))
		if err != nil {
			t.Fatal(err)
		}
		s.files[n] = b
	}
	s.srv = &nationalServer{}
	s.srv.mode.Store("")
	s.srv.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// One page holds everything: the suite measures decisions, not
		// paging, and fewer round trips keep it fast.
		q := r.URL.Query()
		if q.Get("_count") == "" {
			q.Set("_count", "500")
			r.URL.RawQuery = q.Encode()
		}
		s.srv.serve(w, r, s.cur.Load())
	}))
	t.Cleanup(s.srv.Close)
	s.baseGender = s.serve(t, nil)
	s.base = s.cur.Load()
	return s
}

// restore serves the base data again and returns the patient's gender.
func (s *ndSource) restore() string {
	s.cur.Store(s.base)
	return s.baseGender
}

// serve makes the source answer with its data changed by m (nil: the
// base), and returns the gender the session's patient then has. A mutation
// that leaves the session's patient as it was fails the test: the pair
// would prove nothing.
func (s *ndSource) serve(t testing.TB, m *ndMutation) string {
	t.Helper()
	mfs := fstest.MapFS{}
	gender, found := "", false
	for name, raw := range s.files {
		var doc map[string]any
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		for _, p := range patientsIn(doc) {
			before, _ := json.Marshal(p)
			if m != nil {
				m.apply(p)
			}
			if p["id"] != s.patient {
				continue
			}
			found = true
			gender, _ = p["gender"].(string)
			if after, _ := json.Marshal(p); m != nil && string(after) == string(before) {
				t.Fatalf("%q changes nothing in the patient of %s", m.name, s.id)
			}
		}
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		mfs["v/"+name] = &fstest.MapFile{Data: b}
	}
	if !found {
		t.Fatalf("source %s: patient %s not in its files", s.id, s.patient)
	}
	b, err := source.OpenBundle(source.Options{ID: s.id, Country: s.country, Profile: s.profile, Kind: source.KindBundle, BuiltinDir: "v", Builtin: mfs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		// The variant must be valid R4: a mutation that breaks it is a
		// bug of this test, not a finding.
		t.Fatalf("source %s with %v: %v", s.id, m, err)
	}
	s.cur.Store(b)
	return gender
}

// patientsIn returns the Patient resources of a Bundle or the resource
// itself.
func patientsIn(doc map[string]any) []map[string]any {
	if doc["resourceType"] == "Patient" {
		return []map[string]any{doc}
	}
	var out []map[string]any
	entries, _ := doc["entry"].([]any)
	for _, e := range entries {
		if r, ok := e.(map[string]any)["resource"].(map[string]any); ok && r["resourceType"] == "Patient" {
			out = append(out, r)
		}
	}
	return out
}

// ndMutation changes protected attributes of a Patient (decoded JSON).
type ndMutation struct {
	name  string
	apply func(p map[string]any)
}

func (m *ndMutation) String() string {
	if m == nil {
		return "base"
	}
	return m.name
}

func withExtension(p map[string]any, url string, ext map[string]any) {
	exts, _ := p["extension"].([]any)
	exts = slices.DeleteFunc(exts, func(e any) bool { return e.(map[string]any)["url"] == url })
	ext["url"] = url
	p["extension"] = append(exts, ext)
}

func concept(system, code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
}

func ombCategory(code, text string) map[string]any {
	return map[string]any{"extension": []any{
		map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": "urn:oid:2.16.840.1.113883.6.238", "code": code}},
		map[string]any{"url": "text", "valueString": text},
	}}
}

func countryExtension(country string) map[string]any {
	return map[string]any{"extension": []any{map[string]any{"url": "code", "valueCodeableConcept": concept("urn:iso:std:iso:3166", country)}}}
}

// ndMutations are the protected attributes the suite varies, one or a few
// at a time; the last changes all of them at once.
func ndMutations() []ndMutation {
	flip := func(p map[string]any) {
		if p["gender"] == "female" {
			p["gender"] = "male"
		} else {
			p["gender"] = "female"
		}
	}
	ms := []ndMutation{
		{"gender swapped", flip},
		{"gender other, recorded sex and gender identity", func(p map[string]any) {
			p["gender"] = "other"
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity", map[string]any{
				"extension": []any{map[string]any{"url": "value", "valueCodeableConcept": concept("http://snomed.info/sct", "446131000124102")}}})
			withExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", map[string]any{"valueCode": "F"})
		}},
		{"gender unknown", func(p map[string]any) { p["gender"] = "unknown" }},
		{"born 1931 (elderly)", func(p map[string]any) { p["birthDate"] = "1931-07-04" }},
		{"born 2019 (a child)", func(p map[string]any) { p["birthDate"] = "2019-02-11" }},
		{"birth year only", func(p map[string]any) { p["birthDate"] = "1984" }},
		{"birth year and month", func(p map[string]any) { p["birthDate"] = "1984-06" }},
		{"birth date unknown", func(p map[string]any) {
			delete(p, "birthDate")
			p["_birthDate"] = map[string]any{"extension": []any{map[string]any{
				"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}}}
		}},
		{"religion Islam", func(p map[string]any) {
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-religion", map[string]any{
				"valueCodeableConcept": concept("http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation", "1023")})
		}},
		{"nationality and citizenship Syrian", func(p map[string]any) {
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-nationality", countryExtension("SY"))
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-citizenship", countryExtension("SY"))
		}},
		{"stateless, born in Eritrea", func(p map[string]any) {
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-citizenship", map[string]any{"extension": []any{
				map[string]any{"url": "code", "valueCodeableConcept": map[string]any{"text": "stateless"}}}})
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", map[string]any{
				"valueAddress": map[string]any{"city": "Asmara", "country": "ER"}})
		}},
		{"race and ethnicity (US)", func(p map[string]any) {
			withExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", ombCategory("2054-5", "Black or African American"))
			withExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", ombCategory("2135-2", "Hispanic or Latino"))
		}},
		{"indigenous status and ethnic category", func(p map[string]any) {
			withExtension(p, "http://hl7.org.au/fhir/StructureDefinition/indigenous-status", map[string]any{
				"valueCoding": map[string]any{"system": "https://healthterminologies.gov.au/fhir/CodeSystem/australian-indigenous-status-1", "code": "1"}})
			withExtension(p, "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory", map[string]any{
				"valueCodeableConcept": concept("https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "M")})
		}},
		{"speaks Tigrinya, needs an interpreter", func(p map[string]any) {
			p["communication"] = []any{map[string]any{"language": concept("urn:ietf:bcp:47", "ti"), "preferred": true}}
			withExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired", map[string]any{"valueBoolean": true})
		}},
		{"arrived in 2024", func(p map[string]any) {
			withExtension(p, conformance.ExtArrival, map[string]any{"extension": []any{
				map[string]any{"url": "date", "valueDate": "2024-11-02"},
				map[string]any{"url": "country", "valueCodeableConcept": concept("urn:iso:std:iso:3166", "DE")},
			}})
		}},
	}
	all := slices.Clone(ms)
	ms = append(ms, ndMutation{"every protected attribute at once", func(p map[string]any) {
		for _, m := range all {
			if m.name != "gender swapped" && m.name != "gender unknown" && !strings.HasPrefix(m.name, "birth") && !strings.HasPrefix(m.name, "born") {
				m.apply(p)
			}
		}
		p["birthDate"] = "1958"
	}})
	return ms
}

// ndRequester is one requester of the session and the routes it takes.
type ndRequester struct {
	name, country, role, purpose string
	breakGlass                   bool
	routes                       []string // route templates; {id} and {identifier} are filled in
}

var (
	// $everything gathers every type, the class S migration context split
	// off a Patient included; a search by identifier asks every source.
	clinicalRoutes = []string{"/Patient?identifier={identifier}", "/Patient/{id}",
		"/Patient/{id}/$everything", "/Patient/{id}/$summary"}
	refusedRoutes = []string{"/Patient?identifier={identifier}", "/Patient/{id}/$summary"}
)

// ndRequesters are the session's requesters.
func ndRequesters() []ndRequester {
	return []ndRequester{
		{"DE clinician TREAT", "DE", "clinician", "TREAT", false, clinicalRoutes},
		{"NL clinician TREAT", "NL", "clinician", "TREAT", false, clinicalRoutes},
		{"US clinician TREAT", "US", "clinician", "TREAT", false, clinicalRoutes},
		{"GB clinician TREAT", "GB", "clinician", "TREAT", false, clinicalRoutes},
		{"UA clinician ETREAT break-glass", "UA", "clinician", "ETREAT", true, clinicalRoutes},
		{"DE clinician HLEGAL", "DE", "clinician", "HLEGAL", false, refusedRoutes},
		{"NL researcher HRESCH", "NL", "researcher", "HRESCH", false, refusedRoutes},
		// The auditor's own search comes last: it counts the AuditEvents of
		// the group's requests.
		{"DE auditor HCOMPL", "DE", "auditor", "HCOMPL", false, []string{"/Patient/{id}", auditRoute}},
	}
}

const auditRoute = "/AuditEvent?patient=Patient/{id}&_count=500"

// singleRoutes are the routes a single mutation's session takes: the read
// of the Patient, and $everything, which gathers every type (class S
// included).
var singleRoutes = map[string]bool{"/Patient/{id}": true, "/Patient/{id}/$everything": true}

// ndStep is one request of a session.
type ndStep struct {
	requester ndRequester
	route     string
}

func (st ndStep) String() string { return st.requester.name + " GET " + st.route }

func stepsOf(requesters []ndRequester) []ndStep {
	var out []ndStep
	for _, r := range requesters {
		for _, route := range r.routes {
			out = append(out, ndStep{r, route})
		}
	}
	return out
}

// genderLeak wraps the policy engine and, when on, refuses every release
// from a source whose patient is female: the deliberately discriminatory
// rule the suite must catch. It learns the gender from the test (a map of
// source id to the gender of the patient the source serves now), standing
// for a rule that would read it from the record.
type genderLeak struct {
	next federate.Decider
	on   atomic.Bool
	mu   sync.Mutex
	sex  map[string]string
}

var _ federate.Decider = (*genderLeak)(nil)

func (l *genderLeak) Decide(ctx context.Context, in authz.Input) (authz.Decision, error) {
	d, err := l.next.Decide(ctx, in)
	if err != nil || !l.on.Load() || in.Phase != authz.PhaseRelease || in.Source == nil || !d.Allow {
		return d, err
	}
	l.mu.Lock()
	female := l.sex[in.Source.ID] == "female"
	l.mu.Unlock()
	if female {
		d.Allow, d.Reasons, d.Obligations, d.Agreements = false, []string{"test.patient-is-female"}, nil, nil
	}
	return d, err
}

func (l *genderLeak) set(src, gender string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sex[src] = gender
}

// ndSuite is the gateway and sources of the suite.
type ndSuite struct {
	g       *gateway
	sources []*ndSource
	tokens  map[string]string
	leak    *genderLeak
	// auditOff is how much of the audit log has been read.
	auditOff int64
}

func newNDSuite(t *testing.T) *ndSuite {
	t.Helper()
	s := &ndSuite{
		sources: []*ndSource{
			newNDSource(t, "de-v", "DE", "de-basis", testdataDir(t, "de-policy"), amalPatient, dePolicyPIDSys+"PID-T-0003", "migstat.json"),
			newNDSource(t, "nl-v", "NL", "nl-core", config.BuiltinPrefix+"nl-sample", "d4c79f0e-5e5e-5608-8f41-73dad384fbad", fatimaBSN,
				"fatima.json", "organizations.json"),
			newNDSource(t, "us-v", "US", "us-core", config.BuiltinPrefix+"us-sample", "963dabe4-84e7-4751-b432-e34bdbdbde05", marcosSSN,
				"marcos-delagarza.json"),
			newNDSource(t, "ua-v", "UA", "ips", config.BuiltinPrefix+"ua-sample", "1ca8479c-a504-5c89-8616-253cb11fc611",
				"https://ehealth.ua-sample.example/sid/patient-record|UA-0063-551902", "oleksandr-ips.json"),
			newNDSource(t, "gb-v", "GB", "uk-core", testdataDir(t, "gb-policy"), "3dcf61d4-19e7-5c6d-b335-73d34d18bded", priyaMRN,
				"patients.json"),
		},
		tokens: map[string]string{},
	}
	s.leak = &genderLeak{sex: map[string]string{}}
	s.g = startGateway(t, func(c *config.Config) {
		c.Sources = nil
		for _, src := range s.sources {
			c.Sources = append(c.Sources, config.Source{ID: src.id, Country: src.country, Profile: src.profile, Kind: config.KindFHIR, BaseURL: src.srv.URL})
		}
		// Variants replace each other under the same ids: nothing may be
		// served from a cache.
		c.Cache.Disabled = true
	}, Options{WrapDecider: func(d federate.Decider) federate.Decider { s.leak.next = d; return s.leak }})
	for _, r := range ndRequesters() {
		tok := s.g.token(t, r.country, r.role, r.purpose)
		if r.breakGlass {
			tok = s.g.token(t, r.country, r.role, r.purpose, breakGlass)
		}
		s.tokens[r.name] = tok
	}
	return s
}

// fetch is a GET without the R4 validation of gateway.get (the other tests
// validate every route; here only the decisions matter, and speed).
func (s *ndSuite) fetch(t testing.TB, p, token string) (status int, reqID string, doc map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.g.base+p, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("GET %s: %d, not JSON: %s", p, resp.StatusCode, b)
	}
	return resp.StatusCode, resp.Header.Get("X-Request-Id"), doc
}

// newAuditEvents returns the AuditEvents written since the last call.
func (s *ndSuite) newAuditEvents(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(s.g.cfg.Audit.Log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Seek(s.auditOff, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	s.auditOff += int64(len(b))
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var rec struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		out = append(out, rec.Event)
	}
	return out
}

// answerKey is what an answer shows of a decision: the status, the
// resources released by type (a search's match entries, a document's
// entries, a read's resource), the rule ids of a refusal.
func answerKey(status int, doc map[string]any, keep func(map[string]any) bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %v", status, doc["resourceType"])
	switch doc["resourceType"] {
	case "Bundle":
		counts := map[string]int{}
		entries, _ := doc["entry"].([]any)
		for _, e := range entries {
			em := e.(map[string]any)
			if s, ok := em["search"].(map[string]any); ok && s["mode"] == "outcome" {
				continue
			}
			r, _ := em["resource"].(map[string]any)
			// A document's OperationOutcome reports what the mappings
			// dropped (an extension that never leaves its country, ...):
			// information, not released patient data.
			if r["resourceType"] == "OperationOutcome" || keep != nil && !keep(r) {
				continue
			}
			counts[fmt.Sprint(r["resourceType"])]++
		}
		fmt.Fprintf(&b, " %v", sortedCounts(counts))
		if keep == nil {
			fmt.Fprintf(&b, " total=%v", doc["total"])
		}
	case "OperationOutcome":
		issues, _ := doc["issue"].([]any)
		for _, is := range issues {
			im := is.(map[string]any)
			fmt.Fprintf(&b, " %v", im["code"])
			details, _ := im["details"].(map[string]any)
			codings, _ := details["coding"].([]any)
			for _, c := range codings {
				fmt.Fprintf(&b, " %v", c.(map[string]any)["code"])
			}
		}
	}
	return b.String()
}

func sortedCounts(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, fmt.Sprintf("%s:%d", k, m[k]))
	}
	sort.Strings(keys)
	return "[" + strings.Join(keys, " ") + "]"
}

// auditKey is what an AuditEvent records of the decisions: outcome,
// purposes, the released counts and each policy decision's phase, source,
// verdict and rule ids (sorted: sources answer in parallel).
func auditKey(ev map[string]any) string {
	var parts []string
	for _, d := range decisionsOf(ev) {
		parts = append(parts, fmt.Sprintf("%s/%s/%v/%s/%s", d.Phase, d.Source, d.Allow, d.Rules, d.BreakGlass))
	}
	sort.Strings(parts)
	var released []string
	ents, _ := ev["entity"].([]any)
	for _, e := range ents {
		details, _ := e.(map[string]any)["detail"].([]any)
		for _, x := range details {
			xm := x.(map[string]any)
			if typ, _ := xm["type"].(string); strings.HasPrefix(typ, "released:") || typ == "http-status" {
				released = append(released, typ+"="+fmt.Sprint(xm["valueString"]))
			}
		}
	}
	sort.Strings(released)
	return fmt.Sprintf("outcome=%v purposes=%v released=%v decisions=%v", ev["outcome"], purposesOf(ev), released, parts)
}

// session runs steps about one patient and returns one key per step, in
// order.
func (s *ndSuite) session(t testing.TB, src *ndSource, steps []ndStep) []string {
	t.Helper()
	id := s.g.id(t, src.id, "Patient", src.patient)
	fill := strings.NewReplacer("{id}", id, "{identifier}", src.identifier)
	var keys []string
	s.newAuditEvents(t) // skip what came before
	group := map[string]bool{}
	for _, st := range steps {
		status, reqID, doc := s.fetch(t, fill.Replace(st.route), s.tokens[st.requester.name])
		var keep func(map[string]any) bool
		if st.route == auditRoute {
			// Only the AuditEvents of this session's requests: the log
			// holds earlier variants too.
			keep = func(ev map[string]any) bool { return group[traceOf(ev)] }
		}
		evs := s.newAuditEvents(t)
		if len(evs) != 1 {
			t.Fatalf("%s: %d AuditEvents, want 1", st, len(evs))
		}
		group[reqID] = true
		keys = append(keys, answerKey(status, doc, keep)+" | "+auditKey(evs[0]))
	}
	return keys
}

// traceOf is the trace id an AuditEvent names.
func traceOf(ev map[string]any) string {
	ents, _ := ev["entity"].([]any)
	for _, e := range ents {
		em := e.(map[string]any)
		if em["name"] != "trace" {
			continue
		}
		what, _ := em["what"].(map[string]any)
		ident, _ := what["identifier"].(map[string]any)
		v, _ := ident["value"].(string)
		return v
	}
	return ""
}

// ndPlan says which variants meet which patients and requesters. Every
// mutation but the last meets one patient in stride (rotating, so that
// together they meet every patient), only the requesters whose base
// session reached that patient's source (the others are refused before
// any source is asked, on grounds that hold no patient data) and only
// singleRoutes. The last mutation meets every patient, requester and
// route, as the base does.
type ndPlan struct {
	mutations  []ndMutation
	stride     int
	requesters []ndRequester
}

// differences runs the base session, then every variant of the plan, and
// returns the requests whose answers or audit records differ from the
// base's, and the base's answers. It does not fail the test on a
// difference: the caller decides, so that the suite can be shown to catch
// discrimination.
func (s *ndSuite) differences(t testing.TB, plan ndPlan) (compared int, diffs, baseKeys []string) {
	t.Helper()
	for _, src := range s.sources {
		s.leak.set(src.id, src.restore())
	}
	all := stepsOf(plan.requesters)
	base := make([][]string, len(s.sources))
	reaching := make([][]int, len(s.sources))
	for si, src := range s.sources {
		base[si] = s.session(t, src, all)
		baseKeys = append(baseKeys, base[si]...)
		contacted := map[string]bool{}
		for k, key := range base[si] {
			if strings.Contains(key, "query/"+src.id+"/true/") {
				contacted[all[k].requester.name] = true
			}
		}
		for k, st := range all {
			if contacted[st.requester.name] && singleRoutes[st.route] {
				reaching[si] = append(reaching[si], k)
			}
		}
	}
	for mi, m := range plan.mutations {
		last := mi == len(plan.mutations)-1
		for si, src := range s.sources {
			idx := reaching[si]
			if last {
				idx = make([]int, len(all))
				for k := range idx {
					idx[k] = k
				}
			} else if (mi+si)%plan.stride != 0 {
				continue
			}
			steps := make([]ndStep, len(idx))
			for k, j := range idx {
				steps[k] = all[j]
			}
			s.leak.set(src.id, src.serve(t, &m))
			got := s.session(t, src, steps)
			s.leak.set(src.id, src.restore())
			for k, j := range idx {
				compared++
				if got[k] != base[si][j] {
					diffs = append(diffs, fmt.Sprintf("%s with %q, %s:\n  base    %s\n  variant %s", src.id, m.name, all[j], base[si][j], got[k]))
				}
			}
		}
	}
	return compared, diffs, baseKeys
}

func TestNonDiscriminationThroughGateway(t *testing.T) {
	t.Parallel()
	s := newNDSuite(t)
	start := time.Now()
	plan := ndPlan{mutations: ndMutations(), stride: len(s.sources), requesters: ndRequesters()}
	minCompared := 150
	if testing.Short() {
		// Every attribute at once, on every patient, for every requester.
		plan.mutations, minCompared = plan.mutations[len(plan.mutations)-1:], 100
	}
	compared, diffs, baseKeys := s.differences(t, plan)
	for _, d := range diffs {
		t.Error(d)
	}
	t.Logf("%d requests compared with the base patients' in %s: %d differ", compared, time.Since(start).Round(time.Millisecond), len(diffs))
	if compared < minCompared {
		t.Errorf("only %d requests compared", compared)
	}

	// The variants reach the requesters: with the gender swapped, the
	// patient's own country reads the swapped gender.
	swap := ndMutations()[0]
	for _, src := range s.sources {
		want := src.serve(t, &swap)
		var tok string
		for _, r := range ndRequesters() {
			if r.country == src.country && r.role == "clinician" && tok == "" {
				tok = s.tokens[r.name]
			}
		}
		status, _, doc := s.fetch(t, "/Patient/"+s.g.id(t, src.id, "Patient", src.patient), tok)
		src.restore()
		if status != 200 || doc["gender"] != want {
			t.Errorf("%s: the variant did not reach the requester: %d, gender %v, want %s", src.id, status, doc["gender"], want)
		}
	}

	// The session is not blind: across requesters the answers differ (some
	// get data, some are refused, for different reasons), so a protected
	// attribute that moved a decision would show.
	distinct := map[string]bool{}
	for _, k := range baseKeys {
		answer, _, _ := strings.Cut(k, " | ")
		distinct[answer] = true
	}
	if len(distinct) < 20 {
		t.Errorf("only %d distinct answers over the session", len(distinct))
	}

	t.Run("a discriminatory decider is caught", func(t *testing.T) {
		s.leak.on.Store(true)
		t.Cleanup(func() { s.leak.on.Store(false) })
		// A small session: two clinicians read each patient, whose gender
		// is swapped.
		var requesters []ndRequester
		for _, r := range ndRequesters()[:2] {
			r.routes = []string{"/Patient/{id}"}
			requesters = append(requesters, r)
		}
		// Swapped, then swapped back: the last mutation of a plan meets
		// every patient.
		swap := ndMutations()[:1]
		_, diffs, _ := s.differences(t, ndPlan{mutations: swap, stride: 1, requesters: requesters})
		bySource := map[string]bool{}
		for _, d := range diffs {
			if !strings.Contains(d, "test.patient-is-female") {
				t.Errorf("a difference the leak did not cause:\n%s", d)
			}
			src, _, _ := strings.Cut(d, " ")
			bySource[src] = true
		}
		// DE and NL clinicians are released data from the DE, NL and UA
		// sources; the leak must show in each.
		if len(bySource) < 3 {
			t.Fatalf("the suite noticed the gender leak for %d sources only: %v", len(bySource), diffs)
		}
		t.Logf("%d discriminatory answers found, e.g.\n%s", len(diffs), diffs[0])
	})
}

// Race, ethnicity, indigenous status and religion never leave their country
// (the mappings drop them, the policies redact them): nor may the news that
// the record held them. The loss report a domestic requester reads says
// which were dropped; an answer across a border must not, as it must not
// say that class S data was withheld (summary.ReportableLoss).
func TestCrossBorderAnswersDoNotMentionOriginOnlyAttributes(t *testing.T) {
	t.Parallel()
	src := newNDSource(t, "nl-v", "NL", "nl-core", config.BuiltinPrefix+"nl-sample", "d4c79f0e-5e5e-5608-8f41-73dad384fbad", fatimaBSN,
		"fatima.json", "organizations.json")
	origin := ndMutation{"race, ethnicity, indigenous status, religion", func(p map[string]any) {
		for _, m := range ndMutations() {
			if strings.HasPrefix(m.name, "race") || strings.HasPrefix(m.name, "indigenous") || strings.HasPrefix(m.name, "religion") {
				m.apply(p)
			}
		}
	}}
	src.serve(t, &origin)
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: src.id, Country: src.country, Profile: src.profile, Kind: config.KindFHIR, BaseURL: src.srv.URL}}
		c.Cache.Disabled = true
	}, Options{})
	id := g.id(t, src.id, "Patient", src.patient)
	hints := []string{"us-core-race", "us-core-ethnicity", "indigenous-status", "EthnicCategory", "patient-religion"}
	for _, who := range []struct {
		country string
		foreign bool
	}{{"NL", false}, {"DE", true}} {
		tok := g.token(t, who.country, "clinician", "TREAT")
		seen := map[string]bool{}
		for _, p := range []string{"/Patient?identifier=" + fatimaBSN, "/Patient?_id=" + id, "/Patient/" + id + "/$everything", "/Patient/" + id + "/$summary"} {
			r := g.get(t, p, tok)
			if r.status != 200 {
				t.Fatalf("%s %s: %d %s", who.country, p, r.status, r.body)
			}
			for _, h := range hints {
				if strings.Contains(string(r.body), h) {
					seen[h] = true
					if who.foreign {
						t.Errorf("%s, across the border, %s: the answer says the record held %s", who.country, p, h)
					}
				}
			}
		}
		// The domestic answer shows the record did hold them: the foreign
		// one's silence is not for want of data.
		if !who.foreign && len(seen) < 3 {
			t.Fatalf("the domestic loss report names only %v", seen)
		}
	}
}
