package authz

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
)

// The metamorphic non-discrimination test, at engine level: two patients
// identical except for protected attributes (sex, birth date, religion,
// nationality and citizenship, country of birth, race and ethnicity,
// language, arrival) must get the same decisions, so the same resources are
// released. The patients are real R4 resources, parsed by the R4 codec;
// their facts come from FactsOf, as the gateway's will.
//
// The HTTP-level suite varies patients through the whole gateway; this one
// pins the two layers below it: the input the gateway builds, and the
// policies.

// mutation changes one protected attribute of a Patient (as decoded JSON).
type mutation struct {
	name  string
	apply func(p map[string]any)
}

func setExtension(p map[string]any, url string, ext map[string]any) {
	exts, _ := p["extension"].([]any)
	exts = slices.DeleteFunc(exts, func(e any) bool { return e.(map[string]any)["url"] == url })
	ext["url"] = url
	p["extension"] = append(exts, ext)
}

func codeable(system, code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
}

func protectedMutations() []mutation {
	var ms []mutation
	for _, g := range []string{"male", "female", "other", "unknown"} {
		ms = append(ms, mutation{"gender=" + g, func(p map[string]any) { p["gender"] = g }})
	}
	for _, s := range []string{"M", "F", "UNK"} {
		ms = append(ms, mutation{"birthsex=" + s, func(p map[string]any) {
			setExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", map[string]any{"valueCode": s})
		}})
	}
	ms = append(ms, mutation{"gender-identity", func(p map[string]any) {
		setExtension(p, "http://hl7.org/fhir/StructureDefinition/individual-genderIdentity", map[string]any{
			"extension": []any{map[string]any{"url": "value", "valueCodeableConcept": codeable("http://snomed.info/sct", "446141000124107")}},
		})
	}})
	for _, d := range []string{"1938-02-28", "1990", "2009-06", "2024-12-01"} {
		ms = append(ms, mutation{"birthDate=" + d, func(p map[string]any) { p["birthDate"] = d }})
	}
	ms = append(ms, mutation{"birthDate unknown", func(p map[string]any) {
		delete(p, "birthDate")
		p["_birthDate"] = map[string]any{"extension": []any{map[string]any{
			"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}}}
	}})
	for _, code := range []string{"1013", "1023", "1077", "1041"} {
		ms = append(ms, mutation{"religion=" + code, func(p map[string]any) {
			setExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-religion", map[string]any{
				"valueCodeableConcept": codeable("http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation", code)})
		}})
	}
	for _, c := range []string{"SY", "UA", "AF", "ER", "DE"} {
		ms = append(ms,
			mutation{"citizenship=" + c, func(p map[string]any) {
				setExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-citizenship", map[string]any{
					"extension": []any{map[string]any{"url": "code", "valueCodeableConcept": codeable("urn:iso:std:iso:3166", c)}}})
			}},
			mutation{"nationality=" + c, func(p map[string]any) {
				setExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-nationality", map[string]any{
					"extension": []any{map[string]any{"url": "code", "valueCodeableConcept": codeable("urn:iso:std:iso:3166", c)}}})
			}},
			mutation{"birthPlace=" + c, func(p map[string]any) {
				setExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-birthPlace", map[string]any{
					"valueAddress": map[string]any{"country": c}})
			}},
		)
	}
	for _, r := range [][2]string{{"2106-3", "White"}, {"2054-5", "Black or African American"}, {"2028-9", "Asian"}, {"1002-5", "American Indian or Alaska Native"}} {
		ms = append(ms, mutation{"race=" + r[1], func(p map[string]any) {
			setExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race", map[string]any{"extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": "urn:oid:2.16.840.1.113883.6.238", "code": r[0]}},
				map[string]any{"url": "text", "valueString": r[1]},
			}})
		}})
	}
	for _, e := range []string{"2135-2", "2186-5"} {
		ms = append(ms, mutation{"ethnicity=" + e, func(p map[string]any) {
			setExtension(p, "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity", map[string]any{"extension": []any{
				map[string]any{"url": "ombCategory", "valueCoding": map[string]any{"system": "urn:oid:2.16.840.1.113883.6.238", "code": e}},
			}})
		}})
	}
	for _, l := range []string{"ar", "uk", "ti", "de", "prs"} {
		ms = append(ms, mutation{"language=" + l, func(p map[string]any) {
			p["communication"] = []any{map[string]any{"language": codeable("urn:ietf:bcp:47", l), "preferred": true}}
			setExtension(p, "http://hl7.org/fhir/StructureDefinition/patient-interpreterRequired", map[string]any{"valueBoolean": l != "de"})
		}})
	}
	for _, d := range []string{"2015", "2022-03", "2024-11-02"} {
		ms = append(ms, mutation{"arrival=" + d, func(p map[string]any) {
			setExtension(p, conformance.ExtArrival, map[string]any{"extension": []any{
				map[string]any{"url": "date", "valueDate": d},
				map[string]any{"url": "country", "valueCodeableConcept": codeable("urn:iso:std:iso:3166", "DE")},
			}})
		}})
	}
	return ms
}

// patientVariants returns each base patient as JSON with its variants,
// every one of them valid R4.
type patientCase struct {
	name     string
	base     patient
	variants map[string]patient
}

// patient is one Patient resource: its JSON, and its facts as the gateway
// derives them (the R4 codec, then FactsOf).
type patient struct {
	doc   map[string]any
	facts Resource
}

func newPatient(t *testing.T, doc map[string]any) patient {
	t.Helper()
	raw, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	cr, err := r4.Parse(raw)
	if err != nil {
		t.Fatalf("variant is not valid R4: %v", err)
	}
	facts, err := FactsOf(cr)
	if err != nil {
		t.Fatal(err)
	}
	return patient{doc: doc, facts: facts}
}

func patientCases(t *testing.T) []patientCase {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join("testdata", "resources", "*patient*.json"))
	if len(files) < 3 {
		t.Fatalf("found %d patients", len(files))
	}
	var cases []patientCase
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pc := patientCase{name: filepath.Base(f), variants: map[string]patient{}}
		var base map[string]any
		if err := json.Unmarshal(raw, &base); err != nil {
			t.Fatal(err)
		}
		pc.base = newPatient(t, base)
		for _, m := range protectedMutations() {
			var v map[string]any
			_ = json.Unmarshal(raw, &v)
			m.apply(v)
			pc.variants[m.name] = newPatient(t, v)
		}
		cases = append(cases, pc)
	}
	return cases
}

// scenario is everything about a decision except the patient.
type scenario struct {
	name      string
	requester auth.Requester
	source    string
	consent   []Provision
}

func scenarios() []scenario {
	req := func(country, role, purpose string, breakGlass bool) auth.Requester {
		r := clinician(country)
		r.Role, r.PurposeOfUse, r.BreakGlass = role, purpose, breakGlass
		return r
	}
	requesters := []auth.Requester{
		req("DE", "clinician", "TREAT", false),
		req("NL", "nurse", "COC", false),
		req("UA", "clinician", "ETREAT", true),
		req("NL", "public-health", "PUBHLTH", false),
		req("DE", "researcher", "HRESCH", false),
		req("DE", "auditor", "HCOMPL", false),
		req("US", "clinician", "TREAT", false),
		req("DE", "clinician", "GOV", false),
	}
	consents := []struct {
		name       string
		provisions []Provision
	}{
		{"no consent", nil},
		{"patient deny", []Provision{{ConsentID: "c", Type: "deny"}}},
		{"opt-in DE", []Provision{
			{ConsentID: "c", Type: "deny"},
			{ConsentID: "c", Type: "permit", Level: 1, ActorCountries: []string{"DE", "NL"}, Purposes: []string{"TREAT", "COC", "PUBHLTH"}},
		}},
	}
	var out []scenario
	for _, r := range requesters {
		for _, src := range []string{"DE", "NL", "UA", "US"} {
			// Only the release phase: a query-phase input holds nothing
			// of the patient at all.
			for _, c := range consents {
				out = append(out, scenario{
					name:      fmt.Sprintf("%s %s %s from %s, %s", r.Country, r.Role, r.PurposeOfUse, src, c.name),
					requester: r, source: src, consent: c.provisions,
				})
			}
		}
	}
	return out
}

// deciderFunc decides for one scenario and one patient; the key it
// returns holds everything that shapes what is released.
type deciderFunc func(sc scenario, p patient) (string, error)

// metamorphicStride is 1 (every variant against every scenario) unless
// the race detector runs: then each variant meets every fourth scenario,
// and the variants together still meet them all.
func metamorphicStride() int {
	if raceEnabled {
		return 4
	}
	return 1
}

// violations runs every scenario over every base patient and each of its
// variants, and lists the pairs whose decisions differ. A pool of workers,
// one per CPU, takes the (patient, scenario) jobs; each job writes its own
// slot, merged in job order after Wait, so the result does not depend on
// the scheduling.
func violations(t *testing.T, cases []patientCase, decide deciderFunc) (compared int, diffs []string) {
	t.Helper()
	stride := metamorphicStride()
	scs := scenarios()
	type job struct {
		pc    *patientCase
		names []string
		si    int
	}
	var jobs []job
	for i := range cases {
		names := make([]string, 0, len(cases[i].variants))
		for name := range cases[i].variants {
			names = append(names, name)
		}
		slices.Sort(names)
		for si := range scs {
			jobs = append(jobs, job{&cases[i], names, si})
		}
	}
	type slot struct {
		compared int
		diffs    []string
		err      error
	}
	slots := make([]slot, len(jobs))
	run := func(j job, out *slot) {
		sc := scs[j.si]
		want, err := decide(sc, j.pc.base)
		if err != nil {
			out.err = fmt.Errorf("%s, %s: %w", j.pc.name, sc.name, err)
			return
		}
		for vi, vname := range j.names {
			if (j.si+vi)%stride != 0 {
				continue
			}
			got, err := decide(sc, j.pc.variants[vname])
			if err != nil {
				out.err = fmt.Errorf("%s %s, %s: %w", j.pc.name, vname, sc.name, err)
				return
			}
			out.compared++
			if got != want {
				out.diffs = append(out.diffs, fmt.Sprintf("%s with %s, %s:\n  base    %s\n  variant %s", j.pc.name, vname, sc.name, want, got))
			}
		}
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				run(jobs[i], &slots[i])
			}
		}()
	}
	wg.Wait()
	for _, s := range slots {
		if s.err != nil {
			t.Fatal(s.err)
		}
		compared += s.compared
		diffs = append(diffs, s.diffs...)
	}
	return compared, diffs
}

// inputFor builds the policy input as the gateway does: of the patient
// resource, only its facts.
func inputFor(sc scenario, p patient) Input {
	return releaseInput(sc.requester, p.facts, sc.source, sc.consent...)
}

func decisionKey(d Decision) string {
	d.ID = ""
	b, _ := json.Marshal(d)
	return string(b)
}

func TestMetamorphicNonDiscrimination(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	cases := patientCases(t)
	if testing.Short() {
		cases = cases[:1]
	}
	compared, diffs := violations(t, cases, func(sc scenario, p patient) (string, error) {
		d, err := e.Decide(context.Background(), inputFor(sc, p))
		return decisionKey(d), err
	})
	for _, d := range diffs {
		t.Error(d)
	}
	if compared < 4000/metamorphicStride() {
		t.Errorf("compared %d pairs, too few to mean anything", compared)
	}
	t.Logf("%d patient pairs compared over %d scenarios: %d differ", compared, len(scenarios()), len(diffs))

	// The scenarios are not all alike: the test would see a difference if
	// one reached the decision.
	outcomes := map[string]bool{}
	for _, sc := range scenarios() {
		d, _ := e.Decide(context.Background(), inputFor(sc, cases[0].base))
		outcomes[fmt.Sprint(d.Allow, d.Reasons)] = true
	}
	if len(outcomes) < 8 {
		t.Errorf("only %d distinct outcomes over the scenarios", len(outcomes))
	}
}

// leakyQuery prepares the built-in policies plus the discriminatory
// fixture, compiled without the input schema, so that nothing stops the
// fixture's rules: what the schema and the input construction prevent.
func leakyQuery(t *testing.T) rego.PreparedEvalQuery {
	t.Helper()
	dir := copyBuiltin(t)
	writeFile(t, dir, "mhg/authz/discriminate.rego", string(readTestdata(t, "discriminatory/discriminate.rego")))
	set, err := loadFS(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	c := ast.NewCompiler().WithDefaultRegoVersion(ast.RegoV1)
	if c.Compile(set.serving()); c.Failed() {
		t.Fatal(c.Errors)
	}
	pq, err := rego.New(rego.Query(DecisionQuery), rego.Compiler(c), rego.Store(inmem.NewFromObject(set.data))).PrepareForEval(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return pq
}

func evalKey(pq rego.PreparedEvalQuery, doc ast.Value) (string, error) {
	rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(doc))
	if err != nil || len(rs) == 0 {
		return "", fmt.Errorf("eval: %v (%d results)", err, len(rs))
	}
	var d Decision
	if err := d.fill(rs[0].Expressions[0].Value); err != nil {
		return "", err
	}
	return decisionKey(d), nil
}

// The test has teeth: with the discriminatory rule forced past the schema
// and an input that (wrongly) carries the patient, it finds the pairs the
// rule treats differently.
func TestMetamorphicCatchesDiscrimination(t *testing.T) {
	t.Parallel()
	pq := leakyQuery(t)
	cases := patientCases(t)
	_, diffs := violations(t, cases[:1], func(sc scenario, p patient) (string, error) {
		doc := inputFor(sc, p).normalized().value().(ast.Object)
		// The leak: the patient, protected attributes and all, in the input.
		leaked, err := ast.InterfaceToValue(p.doc)
		if err != nil {
			return "", err
		}
		doc.Insert(ast.StringTerm("patient"), ast.NewTerm(leaked))
		return evalKey(pq, doc)
	})
	if len(diffs) == 0 {
		t.Fatal("the discriminatory rule went unnoticed")
	}
	for _, d := range diffs {
		if !strings.Contains(d, "gender=") {
			t.Errorf("a difference not caused by gender:\n%s", d)
		}
	}
	t.Logf("%d discriminatory pairs found, e.g.\n%s", len(diffs), diffs[0])
}

// Even with the discriminatory rule compiled in, the input the gateway
// builds gives it nothing to read: the second line of defence.
func TestInputGivesDiscriminationNothingToRead(t *testing.T) {
	t.Parallel()
	pq := leakyQuery(t)
	_, diffs := violations(t, patientCases(t)[:1], func(sc scenario, p patient) (string, error) {
		return evalKey(pq, inputFor(sc, p).normalized().value())
	})
	for _, d := range diffs {
		t.Error(d)
	}
}
