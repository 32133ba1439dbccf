package mappings

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

func TestLoadBuiltInProfiles(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	// Every folder here with a mapping.yaml is a profile the binary maps.
	want := profileFolders(t, ".")
	got := e.Profiles()
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Profiles() = %v, want %v", got, want)
	}
	for _, p := range want {
		v := e.Version(p)
		if !strings.HasPrefix(v, "1+") || len(v) != len("1+")+8 {
			t.Errorf("Version(%s) = %q, want spec version + 8 hex digits", p, v)
		}
		info, ok := e.Profile(p)
		if !ok || info.ID != p || info.Version != v || len(info.ResourceTypes) == 0 || info.Title == "" {
			t.Errorf("Profile(%s) = %+v, %v", p, info, ok)
		}
	}
	if v := e.Version("xx-core"); v != "" {
		t.Errorf("Version of an unknown profile = %q, want empty", v)
	}
	if e.Version("de-basis") == e.Version("nl-core") {
		t.Error("two profiles with different specs share a version")
	}
}

// TestMapErrors pins the defined outcome of each kind of bad call.
func TestMapErrors(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	const secret = "Zz-SECRET-Zz"
	tests := []struct {
		name    string
		profile string
		in      string
		want    error
	}{
		{"unknown profile", "xx-core", `{"resourceType":"Patient","id":"p1"}`, ErrUnknownProfile},
		{"not JSON", "de-basis", `{"resourceType":`, ErrNotMappable},
		{"JSON array", "de-basis", `[{"resourceType":"Patient"}]`, ErrNotMappable},
		{"trailing data", "de-basis", `{"resourceType":"Patient"} {}`, ErrNotMappable},
		{"no resourceType", "de-basis", `{"id":"p1","name":[{"family":"` + secret + `"}]}`, ErrNotMappable},
		{"type the spec does not cover", "de-basis", `{"resourceType":"Encounter","id":"e1","status":"finished","class":{"code":"AMB"},"reasonCode":[{"text":"` + secret + `"}]}`, ErrNotMappable},
		{"unknown modifier extension", "uk-core", `{"resourceType":"Patient","id":"p1","modifierExtension":[{"url":"http://example.org/sealed","valueString":"` + secret + `"}],"birthDate":"1990"}`, ErrNotMappable},
		{"drop rule on a modifier extension", "de-basis", `{"resourceType":"Patient","id":"p1","modifierExtension":[{"url":"http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName","valueString":"` + secret + `"}]}`, ErrNotMappable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Map(tc.profile, []byte(tc.in), testOptions(tc.profile))
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
			if len(res.Outputs) != 0 {
				t.Errorf("outputs on error: %d", len(res.Outputs))
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error quotes the input: %v", err)
			}
		})
	}
}

// An unmapped national code is a warning; the national coding stays and
// nothing is invented. U99.0 is an ICD-10-GM category WHO ICD-10 does not
// have, and no ConceptMap of de-basis lists it.
func TestUnmappedCodeIsAWarning(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	in := `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},
	  "code":{"coding":[{"system":"http://fhir.de/CodeSystem/bfarm/icd-10-gm","code":"U99.0","display":"x"}]}}`
	res, err := e.Map("de-basis", []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	var warned bool
	for _, is := range res.Issues {
		if is.Severity == sevWarning && is.Code == codeNotFound && is.Path == "Condition.code" {
			warned = true
		}
		if strings.Contains(is.Message, "U99.0") {
			t.Errorf("issue quotes the code: %s", is.Message)
		}
	}
	if !warned {
		t.Errorf("no not-found warning for an unmapped code: %+v", res.Issues)
	}
	codings := outputCodings(t, res.Outputs[0].JSON, "code")
	if len(codings) != 1 || codings[0] != (codingKey{"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "U99.0"}) {
		t.Errorf("codings = %v, want only the national one", codings)
	}
}

func outputCodings(t *testing.T, b []byte, element string) []codingKey {
	t.Helper()
	o, err := decodeObject(b)
	if err != nil {
		t.Fatal(err)
	}
	var out []codingKey
	for _, c := range objects(getObj(o, element)["coding"]) {
		out = append(out, codingKey{getStr(c, "system"), getStr(c, "code")})
	}
	return out
}

func TestReligionAndWithheldData(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	in := `{"resourceType":"Patient","id":"p1","birthDate":"1980",
	  "extension":[
	    {"url":"http://hl7.org/fhir/StructureDefinition/patient-religion","valueCodeableConcept":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ReligiousAffiliation","code":"1023"}]}},
	    {"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[{"url":"text","valueString":"Asian"}]}]}`
	tests := []struct {
		name         string
		keep         bool
		wantReligion bool
		wantWithheld []string
	}{
		{"default drops religion", false, false, []string{"religion", "origin-only"}},
		{"patient asked to keep religion", true, true, []string{"origin-only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var withheld []string
			opts := Options{KeepReligion: tc.keep, Withheld: func(w Withheld) {
				if w.ResourceType != "Patient" || w.UpstreamID != "p1" || !json.Valid(w.JSON) || w.URL == "" {
					t.Errorf("withheld item incomplete: %+v", w)
				}
				withheld = append(withheld, w.Kind)
			}}
			res, err := e.Map("us-core", []byte(in), opts)
			if err != nil {
				t.Fatal(err)
			}
			out := string(res.Outputs[0].JSON)
			if got := strings.Contains(out, "patient-religion"); got != tc.wantReligion {
				t.Errorf("religion in output = %v, want %v", got, tc.wantReligion)
			}
			if strings.Contains(out, "us-core-race") {
				t.Error("race left the country of origin")
			}
			if strings.Join(withheld, ",") != strings.Join(tc.wantWithheld, ",") {
				t.Errorf("withheld = %v, want %v", withheld, tc.wantWithheld)
			}
		})
	}
}

// TestBadSpecs loads broken spec trees: each must stop Load with the file
// and line of the problem.
func TestBadSpecs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dir  string
		want string // substring of the error, with file:line
	}{
		{"contradictory-extension", "common/mapping.yaml:6:5: extension http://hl7.org/fhir/StructureDefinition/data-absent-reason has two rules (first at line 5): contradictory"},
		{"contradictory-conceptmap", "xx-core/conceptmaps/xx-map.json:17:13: one source code is equivalent to two different target codes: contradictory"},
		{"duplicate-code-in-conceptmap", "xx-core/conceptmaps/xx-map.json:19:9: source code listed twice in one group (first at line 10): contradictory"},
		{"firewall-not-in-profile", "common/naming-systems.yaml:6:5: identifier xx-asylum-card is firewalled, but mhp-pat-2"},
		{"contradictory-registry", "common/naming-systems.yaml:10:5: system http://fhir.nl/fhir/NamingSystem/bsn is already claimed by identifier nl-bsn"},
		{"unknown-key", `xx-core/mapping.yaml:9:35: unknown key "acton"`},
		{"unknown-conceptmap", `xx-core/mapping.yaml:6:5: unknown ConceptMap "no-such-map"`},
		{"unknown-transform", `xx-core/mapping.yaml:9:5: extension http://example.org/ext: unknown transform "guess-the-sex"`},
		{"bad-yaml", "xx-core/mapping.yaml:9:"},
		{"folder-mismatch", `yy-core/mapping.yaml:1:1: profile "xx-core" must equal the folder name "yy-core"`},
		{"unknown-mhp-profile", `common/mapping.yaml:3:14: Condition: unknown MHP profile "mhp-diagnosis"`},
		{"bad-status-map", "common/mapping.yaml:6:5: status map st-map must target https://fhir.migrant-health.org/mhp/CodeSystem/mhp-migration-status"},
		{"foreign-conceptmap", `common/mapping.yaml:7:5: ConceptMap "xx-map" belongs to profile xx-core`},
		{"missing-version", "xx-core/mapping.yaml:1:1: version is required"},
		{"invalid-conceptmap", "xx-core/conceptmaps/xx-map.json: not a valid R4 ConceptMap"},
		{"unknown-code-rule", `xx-core/mapping.yaml:6:5: code rule xx-icd: unknown rule "icd-11"`},
		{"code-rule-without-list", "xx-core/mapping.yaml:6:5: code rule xx-icd needs common/codelists/icd-10-who.txt"},
		{"code-rule-id-clash", `xx-core/mapping.yaml:6:5: code rule id "xx-map" is already used by xx-core/conceptmaps/xx-map.json`},
		{"duplicate-code-in-list", `common/codelists/icd-10-who.txt:5:1: code "A00" listed twice`},
	}
	good, err := LoadFS(os.DirFS(filepath.Join("testdata", "badspecs", "good")))
	if err != nil {
		t.Fatalf("the base tree of the bad specs must load: %v", err)
	}
	if got := good.Profiles(); len(got) != 1 || got[0] != "xx-core" {
		t.Fatalf("good tree profiles = %v", got)
	}
	for _, tc := range tests {
		t.Run(tc.dir, func(t *testing.T) {
			_, err := LoadFS(os.DirFS(filepath.Join("testdata", "badspecs", tc.dir)))
			if err == nil {
				t.Fatal("Load accepted a broken spec")
			}
			if !errors.Is(err, ErrInvalidSpec) {
				t.Errorf("error does not wrap ErrInvalidSpec: %v", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, tc.want)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.File == "" {
				t.Errorf("no *SpecError with a file in %v", err)
			}
		})
	}
}

func TestProvenance(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	b, err := os.ReadFile(filepath.Join("testdata", "uk-core", "in", "patients.json"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2024, 5, 2, 10, 0, 0, 0, time.UTC)
	opts := testOptions("uk-core")
	opts.Now = func() time.Time { return now }
	var outs []Output
	for _, in := range fixtureResources(t, b)[:2] {
		res, err := e.Map("uk-core", in, opts)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, res.Outputs...)
	}
	if len(outs) < 2 || outs[1].Class != ClassSensitive {
		t.Fatalf("want a Patient and its migration-context, got %d outputs", len(outs))
	}
	for _, out := range outs {
		t.Run(out.Type+"-"+out.Class, func(t *testing.T) {
			pb, err := e.Provenance(out, opts, "uk-core")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r4.Parse(pb); err != nil {
				t.Fatalf("not valid R4: %v\n%s", err, pb)
			}
			for _, is := range conformance.Check(pb) {
				if is.Severity == conformance.SeverityError {
					t.Errorf("mhp-provenance: %s", is)
				}
			}
			var prov struct {
				Target   []struct{ Reference string }
				Recorded string
				Policy   []string
				Entity   []struct {
					Role string
					What struct {
						Type       string
						Identifier struct{ System, Value string }
					}
				}
			}
			if err := json.Unmarshal(pb, &prov); err != nil {
				t.Fatal(err)
			}
			upstream, _, _ := SplitDerivedID(out.UpstreamID)
			if prov.Target[0].Reference != out.Type+"/"+out.ID {
				t.Errorf("target = %s", prov.Target[0].Reference)
			}
			what := prov.Entity[0].What
			if what.Type != "Patient" || what.Identifier.Value != testID("Patient", upstream) ||
				what.Identifier.System != SourceIdentifierSystem("uk-core-test") {
				t.Errorf("entity.what = %+v", what)
			}
			if prov.Policy[0] != MappingURI("uk-core", e.Version("uk-core")) {
				t.Errorf("policy = %v", prov.Policy)
			}
			if prov.Recorded != "2024-05-02T10:00:00.000Z" {
				t.Errorf("recorded = %s", prov.Recorded)
			}
			if strings.Contains(string(pb), upstream) {
				t.Error("the Provenance holds the upstream id")
			}
		})
	}
	if _, err := e.Provenance(outs[0], opts, "xx-core"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
	if _, err := e.Provenance(Output{Type: "Patient"}, opts, "uk-core"); !errors.Is(err, ErrNotMappable) {
		t.Errorf("output without ids: %v", err)
	}
}

func TestDerivedID(t *testing.T) {
	t.Parallel()
	d := DerivedID("p-1", "migration-context")
	up, kind, ok := SplitDerivedID(d)
	if !ok || up != "p-1" || kind != "migration-context" {
		t.Errorf("SplitDerivedID(%q) = %q, %q, %v", d, up, kind, ok)
	}
	if _, _, ok := SplitDerivedID("p-1"); ok {
		t.Error("an ordinary id reads as derived")
	}
	long := strings.Repeat("a", 64)
	if id := derivedLocalID(long, "migration-context"); !r4.IsID(id) {
		t.Errorf("derived id of a 64-character id is not a FHIR id: %q", id)
	}
}

// References that are not Type/id are resolved when the caller can, and
// never leave with an upstream id otherwise.
func TestReferences(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	in := `{"resourceType":"Condition","id":"c1","code":{"text":"x"},
	  "subject":{"reference":"urn:uuid:0b7ef4d2-1111-4c5e-9a52-7a4b0f6d1c11"},
	  "recorder":{"reference":"https://ehr.example.org/fhir/Practitioner/77","display":"Dr X"},
	  "asserter":{"reference":"Practitioner/77/_history/3"}}`
	tests := []struct {
		name                        string
		opts                        Options
		subject, recorder, asserter string
	}{
		{"ids kept", Options{}, "urn:uuid:0b7ef4d2-1111-4c5e-9a52-7a4b0f6d1c11", "https://ehr.example.org/fhir/Practitioner/77", "Practitioner/77/_history/3"},
		{"gateway ids", Options{ID: testID}, "", "", "Practitioner/" + testID("Practitioner", "77")},
		{"resolved", Options{ID: testID, ResolveReference: func(r string) (string, bool) {
			if strings.HasPrefix(r, "urn:uuid:") {
				return "Patient/p9", true
			}
			return "", false
		}}, "Patient/" + testID("Patient", "p9"), "", "Practitioner/" + testID("Practitioner", "77")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Map("de-basis", []byte(in), tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			o, _ := decodeObject(res.Outputs[0].JSON)
			for el, want := range map[string]string{"subject": tc.subject, "recorder": tc.recorder, "asserter": tc.asserter} {
				if got := getStr(getObj(o, el), "reference"); got != want {
					t.Errorf("%s.reference = %q, want %q", el, got, want)
				}
			}
			if tc.opts.ID != nil && getStr(getObj(o, "recorder"), "display") != "Dr X" {
				t.Error("display of a removed reference was lost")
			}
			if _, err := r4.Parse(res.Outputs[0].JSON); err != nil {
				t.Errorf("not valid R4: %v", err)
			}
		})
	}
}

func TestMapAllBundle(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	b, err := os.ReadFile(filepath.Join("testdata", "convert", "synthea-transaction.json"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.MapAll("us-core", b, Options{ID: testID})
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	for _, o := range res.Outputs {
		types[o.Type]++
		if strings.Contains(string(o.JSON), "urn:uuid:") {
			t.Errorf("%s output keeps a urn:uuid reference", o.Type)
		}
	}
	if types["Patient"] != 1 || types["Observation"] != 4 || types["Encounter"] != 0 {
		t.Errorf("outputs by type = %v", types)
	}
	var entryErrors int
	for _, is := range res.Issues {
		if !strings.HasPrefix(is.Path, "Bundle.entry[") {
			t.Errorf("issue path %q is not located in the Bundle", is.Path)
		}
		if is.Severity == sevError {
			entryErrors++
		}
	}
	if entryErrors != 3 { // two Encounters and a Claim
		t.Errorf("%d entry errors, want 3: %+v", entryErrors, res.Issues)
	}
	single, err := e.MapAll("us-core", []byte(`{"resourceType":"Condition","id":"c","code":{"text":"x"}}`), Options{})
	if err != nil || len(single.Outputs) != 1 {
		t.Errorf("single resource: %v, %d outputs", err, len(single.Outputs))
	}
	if _, err := e.MapAll("xx", b, Options{}); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("unknown profile: %v", err)
	}
}

// Options.DerivedID names the outputs that have no upstream resource of
// their own, so a gateway can encode (kind, upstream id) its own way.
func TestDerivedIDOption(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	in := `{"resourceType":"Patient","id":"p-7","birthDate":"1990",
	  "identifier":[{"system":"urn:oid:1.2.250.1.213.1.4.9","value":"1880399352071"}]}`
	type call struct{ typ, up, kind string }
	var calls []call
	opts := Options{ID: testID, DerivedID: func(typ, up, kind string) string {
		calls = append(calls, call{typ, up, kind})
		return "d-" + kind
	}}
	res, err := e.Map("fr-core", []byte(in), opts)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Outputs) != 2 || res.Outputs[1].ID != "d-migration-context" || res.Outputs[1].UpstreamID != "p-7/migration-context" {
		t.Fatalf("outputs = %+v", res.Outputs)
	}
	for _, out := range res.Outputs {
		if _, err := e.Provenance(out, opts, "fr-core"); err != nil {
			t.Fatal(err)
		}
	}
	want := []call{{"Observation", "p-7", "migration-context"}, {"Provenance", "p-7", "provenance"}, {"Provenance", "p-7", "migration-context-provenance"}}
	if len(calls) != len(want) {
		t.Fatalf("calls = %v, want %v", calls, want)
	}
	for i := range want {
		if calls[i] != want[i] {
			t.Errorf("call %d = %v, want %v", i, calls[i], want[i])
		}
	}
}

// The reason an NHS number is missing can be "overseas-patient", which
// reveals residence abroad as the firewalled residential status does: it
// must not be in any output.
func TestNHSNumberUnavailableReasonDoesNotLeave(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	in := `{"resourceType":"Patient","id":"p1","name":[{"family":"X"}],"birthDate":"1990",
	  "identifier":[{"system":"https://fhir.nhs.uk/Id/nhs-number","value":"9400000001","extension":[
	    {"url":"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberUnavailableReason",
	     "valueCodeableConcept":{"coding":[{"system":"https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberUnavailableReason","code":"overseas-patient"}]}}]}]}`
	res, err := e.Map("uk-core", []byte(in), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range res.Outputs {
		if strings.Contains(string(out.JSON), "overseas-patient") || strings.Contains(string(out.JSON), "NHSNumberUnavailableReason") {
			t.Errorf("%s output carries the NHS number unavailable reason: %s", out.Type, out.JSON)
		}
	}
}
