package server

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/source"
)

// Patient/$match through the whole gateway: real tokens, the shipped
// policies and agreements, the built-in national sources (Amina
// Seitumerova is in the German, Dutch and Ukrainian ones, in Cyrillic in
// the last), and the audit log.

// matchBody is a $match Parameters body for a Patient with the given JSON
// members, and further parameters.
func matchBody(patient string, params ...string) []byte {
	p := []string{`{"name":"resource","resource":{"resourceType":"Patient"` + patient + `}}`}
	p = append(p, params...)
	return []byte(`{"resourceType":"Parameters","parameter":[` + strings.Join(p, ",") + `]}`)
}

const (
	aminaTraits        = `,"name":[{"family":"Seitumerova","given":["Amina"]}],"birthDate":"1991-03-14","gender":"female"`
	aminaWithoutGender = `,"name":[{"family":"Seitumerova","given":["Amina"]}],"birthDate":"1991-03-14"`
)

// candidate is one match entry of a $match answer.
type candidate struct {
	source, grade string
	score         float64
}

func candidates(t testing.TB, r reply) []candidate {
	t.Helper()
	var out []candidate
	list, _ := r.json["entry"].([]any)
	for _, e := range list {
		em := e.(map[string]any)
		s := em["search"].(map[string]any)
		if s["mode"] != "match" {
			continue
		}
		c := candidate{}
		c.score, _ = s["score"].(float64)
		exts, _ := s["extension"].([]any)
		for _, x := range exts {
			xm := x.(map[string]any)
			if xm["url"] == "http://hl7.org/fhir/StructureDefinition/match-grade" {
				c.grade, _ = xm["valueCode"].(string)
			}
		}
		id := em["resource"].(map[string]any)["id"].(string)
		c.source, _, _ = strings.Cut(id, ".")
		out = append(out, c)
	}
	return out
}

func outcomeText(r reply) string {
	var b strings.Builder
	list, _ := r.json["entry"].([]any)
	for _, e := range list {
		res := e.(map[string]any)["resource"].(map[string]any)
		if res["resourceType"] != "OperationOutcome" {
			continue
		}
		for _, is := range res["issue"].([]any) {
			b.WriteString(is.(map[string]any)["diagnostics"].(string))
			b.WriteString("\n")
		}
	}
	return b.String()
}

func TestMatchFindsThePersonAcrossCountries(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaTraits))
	if r.status != http.StatusOK || r.json["type"] != "searchset" {
		t.Fatalf("status %d\n%s", r.status, r.body)
	}
	got := candidates(t, r)
	var sources []string
	for _, c := range got {
		sources = append(sources, c.source)
		if c.grade != "certain" || c.score < 0.99 {
			t.Errorf("%s: grade %q score %v, want certain above 0.99 (same names in another script, same full birth date)", c.source, c.grade, c.score)
		}
	}
	slices.Sort(sources)
	if strings.Join(sources, ",") != "de-sample,nl-sample,ua-sample" {
		t.Errorf("candidates from %v, want one each from de-sample, nl-sample and ua-sample (the US source has no agreement)", sources)
	}
	// Best first.
	for i := 1; i < len(got); i++ {
		if got[i].score > got[i-1].score {
			t.Errorf("entries not sorted by score: %v", got)
		}
	}

	// The audit record names the trait kinds and every candidate with its
	// grade, and none of the values searched with.
	events := auditEvents(t, g)
	ev := events[len(events)-1]
	raw, _ := json.Marshal(ev)
	for _, phi := range []string{"Seitumerova", "Amina", "1991-03-14"} {
		if strings.Contains(string(raw), phi) {
			t.Errorf("the AuditEvent holds %q", phi)
		}
	}
	if !strings.Contains(string(raw), `"match-traits","valueString":"birthDate,family,gender,given"`) {
		t.Errorf("the AuditEvent does not list the trait kinds:\n%s", raw)
	}
	if n := strings.Count(string(raw), `"match-grade","valueString":"certain"`); n != 3 {
		t.Errorf("the AuditEvent lists %d certain candidates, want 3:\n%s", n, raw)
	}
	log, _ := os.ReadFile(g.cfg.Audit.Log)
	if strings.Contains(string(log), "Seitumerova") || strings.Contains(string(log), "1991-03-14") {
		t.Error("the audit log holds a trait value")
	}

	// The Patient may come alone, as IHE PDQm allows; count bounds the
	// answer.
	alone := g.post(t, "/Patient/$match", tok, "application/fhir+json", []byte(`{"resourceType":"Patient"`+aminaTraits+`}`))
	if len(candidates(t, alone)) != 3 {
		t.Errorf("a Patient posted alone: %d candidates, want 3\n%s", len(candidates(t, alone)), alone.body)
	}
	two := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaTraits, `{"name":"count","valueInteger":2}`))
	if len(candidates(t, two)) != 2 {
		t.Errorf("count 2: %d candidates", len(candidates(t, two)))
	}
}

func TestMatchGradesAndConfidence(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	// Amina with a birth year only and another spelling: no candidate can
	// be certain (a namesake born the same year cannot be ruled out).
	yearOnly := `,"name":[{"family":"Seitumerowa","given":["Amina"]}],"birthDate":"1991","gender":"female"`
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(yearOnly))
	if r.status != http.StatusOK {
		t.Fatalf("status %d\n%s", r.status, r.body)
	}
	for _, c := range candidates(t, r) {
		if c.grade != "probable" {
			t.Errorf("%s: grade %s, want probable", c.source, c.grade)
		}
	}
	if len(candidates(t, r)) == 0 {
		t.Fatal("no candidate for a year-only search")
	}

	// onlyCertainMatches: the same answer whether there were probable
	// candidates or nobody at all.
	only := `{"name":"onlyCertainMatches","valueBoolean":true}`
	probable := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(yearOnly, only))
	nobody := g.post(t, "/Patient/$match", tok, "application/fhir+json",
		matchBody(`,"name":[{"family":"Nowhere","given":["Nobody"]}],"birthDate":"1991","gender":"female"`, only))
	for name, x := range map[string]reply{"probable candidates": probable, "nobody": nobody} {
		if x.status != http.StatusOK || len(candidates(t, x)) != 0 || x.json["total"].(float64) != 0 {
			t.Errorf("%s: status %d, %d candidates, want 200 and none", name, x.status, len(candidates(t, x)))
		}
		if !strings.Contains(outcomeText(x), "confidence below what the request needs") {
			t.Errorf("%s: the outcome does not say the confidence was too low:\n%s", name, x.body)
		}
	}
	if outcomeText(probable) != outcomeText(nobody) {
		t.Errorf("the outcomes differ, which tells whether the person exists:\n%s\n%s", outcomeText(probable), outcomeText(nobody))
	}
}

func TestMatchPolicy(t *testing.T) {
	t.Parallel()
	env := startPolicyEnv(t)
	g := env.g
	before := env.contacts()
	for _, tc := range []struct {
		name, role, purpose, rule string
	}{
		{"a nurse", "nurse", "TREAT", "match.role-not-allowed"},
		{"a researcher", "researcher", "TREAT", "match.role-not-allowed"},
		{"public health", "clinician", "PUBHLTH", "match.purpose-not-allowed"},
		{"legal proceedings", "clinician", "HLEGAL", "firewall.query.purpose-forbidden"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := g.post(t, "/Patient/$match", g.token(t, "DE", tc.role, tc.purpose), "application/fhir+json", matchBody(aminaTraits))
			if r.status != http.StatusForbidden || !slices.Contains(r.rules(), tc.rule) {
				t.Errorf("status %d rules %v, want 403 naming %s", r.status, r.rules(), tc.rule)
			}
		})
	}
	// Not enough traits for any source's rules: 422, and nobody asked.
	tok := g.token(t, "DE", "clinician", "TREAT")
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(`,"name":[{"family":"Seitumerova","given":["Amina"]}]`))
	if r.status != http.StatusUnprocessableEntity || r.outcomeCode(t) != "incomplete" || !strings.Contains(string(r.body), "not enough traits") {
		t.Errorf("without a birth date: status %d\n%s", r.status, r.body)
	}
	if after := env.contacts(); after != before {
		t.Errorf("sources contacted: before %v, after %v; refused requests must contact none", before, after)
	}
	// No name at all: a bad request, not a search.
	if r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(`,"birthDate":"1991-03-14"`)); r.status != http.StatusBadRequest {
		t.Errorf("without a name: status %d", r.status)
	}
	// With the traits: the sources are asked.
	if r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaTraits)); r.status != http.StatusOK {
		t.Errorf("with every trait: status %d\n%s", r.status, r.body)
	}
	if after := env.contacts(); after[0] == before[0] || after[1] == before[1] || after[2] != before[2] {
		t.Errorf("contacts %v -> %v: the German and Dutch sources must be asked, the US one never", before, after)
	}
}

func TestMatchSourceRulesOnTraits(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	// The Ukrainian source requires the kind "gender" under its
	// agreement: without it, it is not asked, and the answer says why.
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaWithoutGender))
	if r.status != http.StatusOK {
		t.Fatalf("status %d\n%s", r.status, r.body)
	}
	var sources []string
	for _, c := range candidates(t, r) {
		sources = append(sources, c.source)
	}
	if slices.Contains(sources, "ua-sample") || len(sources) != 2 {
		t.Errorf("candidates from %v, want de-sample and nl-sample only", sources)
	}
	if !strings.Contains(outcomeText(r), "not enough traits: source ua-sample") {
		t.Errorf("the outcome does not say the Ukrainian source needs more traits:\n%s", outcomeText(r))
	}
	events := auditEvents(t, g)
	raw, _ := json.Marshal(events[len(events)-1])
	if !strings.Contains(string(raw), `"value":"de-sample"`) || strings.Contains(string(raw), `"value":"ua-sample"`) {
		t.Errorf("the AuditEvent should name de-sample and not ua-sample as contacted:\n%s", raw)
	}
	for _, d := range decisionsOf(events[len(events)-1]) {
		if d.Source == "ua-sample" && d.Phase == "query" && (d.Allow || d.Rules != "match.traits-insufficient") {
			t.Errorf("ua-sample query decision %+v, want a refusal for want of traits", d)
		}
	}
}

// matchServer is a national FHIR server that answers Patient/$match and
// keeps the bodies it is sent.
type matchServer struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newMatchServer(t *testing.T, dir string) *matchServer {
	t.Helper()
	opts := sourceOptions(config.Source{ID: "upstream", Country: "NL", Profile: "nl-core", Kind: config.KindBundle, Dir: dir}, 0)
	opts.Builtin, opts.Logger = examples.FS, slog.New(slog.DiscardHandler)
	b, err := source.OpenBundle(opts)
	if err != nil {
		t.Fatal(err)
	}
	ms := &matchServer{}
	ms.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		if r.Method != http.MethodPost || r.URL.Path != "/Patient/$match" {
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
			return
		}
		body, _ := io.ReadAll(r.Body)
		ms.mu.Lock()
		ms.bodies = append(ms.bodies, string(body))
		ms.mu.Unlock()
		// This server answers with every Patient it holds: the gateway
		// scores them itself.
		found, _ := b.Search(r.Context(), "Patient", nil)
		var entries []string
		for _, p := range found {
			entries = append(entries, `{"fullUrl":"`+ms.URL+`/Patient/`+p.ID+`","resource":`+string(p.JSON)+`,"search":{"mode":"match","score":0.5}}`)
		}
		io.WriteString(w, `{"resourceType":"Bundle","type":"searchset","entry":[`+strings.Join(entries, ",")+`]}`)
	}))
	t.Cleanup(ms.Close)
	return ms
}

func TestMatchForwardsOnlyAllowedTraits(t *testing.T) {
	t.Parallel()
	nl := newMatchServer(t, config.BuiltinPrefix+"nl-sample")
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-sample", Country: "DE", Profile: "de-basis", Kind: config.KindBundle, Dir: config.BuiltinPrefix + "de-sample"},
			{ID: "nl-pdqm", Country: "NL", Profile: "nl-core", Kind: config.KindFHIR, BaseURL: nl.URL, PatientMatch: config.PatientMatchOperation},
		}
	}, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	withMore := aminaTraits + `,"identifier":[{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"FT482913"}],` +
		`"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-citizenship","extension":[{"url":"code","valueCodeableConcept":{"coding":[{"system":"urn:iso:std:iso:3166","code":"UA"}]}}]}]`
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(withMore))
	if r.status != http.StatusOK {
		t.Fatalf("status %d\n%s", r.status, r.body)
	}
	var fromNL []candidate
	for _, c := range candidates(t, r) {
		if c.source == "nl-pdqm" {
			fromNL = append(fromNL, c)
		}
	}
	// The Dutch server returned all its patients; only Amina matches.
	if len(fromNL) != 1 || fromNL[0].grade != "certain" {
		t.Errorf("candidates from the forwarding source: %+v, want Amina alone, certain", fromNL)
	}
	nl.mu.Lock()
	defer nl.mu.Unlock()
	if len(nl.bodies) != 1 {
		t.Fatalf("the Dutch server got %d $match requests, want 1", len(nl.bodies))
	}
	sent := nl.bodies[0]
	for _, want := range []string{"Seitumerova", "1991-03-14", `"gender":"female"`} {
		if !strings.Contains(sent, want) {
			t.Errorf("the forwarded Patient lacks %s: %s", want, sent)
		}
	}
	// de-nl-2024 lets the Netherlands receive family, given, birthDate,
	// gender and birthPlace: no identifier, no citizenship.
	for _, never := range []string{"FT482913", "passport", "citizenship"} {
		if strings.Contains(sent, never) {
			t.Errorf("the forwarded request holds %q, which the agreement does not allow: %s", never, sent)
		}
	}
}

func TestMatchRateLimit(t *testing.T) {
	g := startGateway(t, func(c *config.Config) { c.Match.Rate, c.Match.Burst = 1, 2 }, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	other := g.token(t, "DE", "clinician", "TREAT", func(m *auth.MintOptions) { m.Org = "another-hospital" })
	for i := range 2 {
		if r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaTraits)); r.status != http.StatusOK {
			t.Fatalf("request %d: status %d", i+1, r.status)
		}
	}
	r := g.post(t, "/Patient/$match", tok, "application/fhir+json", matchBody(aminaTraits))
	if r.status != http.StatusTooManyRequests || r.outcomeCode(t) != "throttled" || r.header.Get("Retry-After") == "" {
		t.Errorf("third request at once: status %d Retry-After %q\n%s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := g.post(t, "/Patient/$match", other, "application/fhir+json", matchBody(aminaTraits)); r.status != http.StatusOK {
		t.Errorf("another requester was throttled: %d", r.status)
	}
}

func TestMatchBadInput(t *testing.T) {
	t.Parallel()
	g := startGateway(t, nil, Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")
	for name, body := range map[string]string{
		"not JSON":          `{"resourceType":`,
		"an Observation":    `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`,
		"no resource":       `{"resourceType":"Parameters","parameter":[{"name":"count","valueInteger":2}]}`,
		"count zero":        string(matchBody(aminaTraits, `{"name":"count","valueInteger":0}`)),
		"invalid R4":        string(matchBody(`,"birthDate":"14.03.1991"`)),
		"resource twice":    string(matchBody(aminaTraits, `{"name":"resource","resource":{"resourceType":"Patient"}}`)),
		"onlyCertain token": string(matchBody(aminaTraits, `{"name":"onlyCertainMatches","valueString":"yes"}`)),
	} {
		t.Run(name, func(t *testing.T) {
			r := g.post(t, "/Patient/$match", tok, "application/fhir+json", []byte(body))
			if r.status != http.StatusBadRequest {
				t.Errorf("status %d, want 400\n%s", r.status, r.body)
			}
			if strings.Contains(string(r.body), "Seitumerova") {
				t.Errorf("the error quotes the Patient: %s", r.body)
			}
		})
	}
	if r := g.get(t, "/Patient/$match", tok); r.status != http.StatusMethodNotAllowed {
		t.Errorf("GET Patient/$match: status %d, want 405", r.status)
	}
}
