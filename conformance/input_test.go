package conformance

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/migrant-health/mhg/conformance/r4"
)

// The same resource checks the same as JSON, as a ContainedResource and as
// a concrete resource proto.
func TestCheckInputForms(t *testing.T) {
	good := readTestdata(t, "mhp/patient.json")
	var d map[string]any
	if err := json.Unmarshal(good, &d); err != nil {
		t.Fatal(err)
	}
	delete(d, "name")
	bad, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		in        []byte
		wantIssue bool
	}{{"good", good, false}, {"no name", bad, true}} {
		cr, err := r4.Parse(tc.in)
		if err != nil {
			t.Fatal(err)
		}
		forms := map[string]any{
			"bytes":     tc.in,
			"raw":       json.RawMessage(tc.in),
			"string":    string(tc.in),
			"contained": cr,
			"concrete":  r4.Resource(cr),
		}
		for form, in := range forms {
			issues := Check(in)
			if got := len(issues) > 0; got != tc.wantIssue {
				t.Errorf("%s as %s: issues %v, want issues: %v", tc.name, form, issues, tc.wantIssue)
			}
			if tc.wantIssue && !hasIssue(issues, want{SeverityError, CodeRequired, "Patient.name", "Patient.name"}) {
				t.Errorf("%s as %s: missing name not reported: %v", tc.name, form, issues)
			}
		}
	}
}

func TestCheckRejectsOtherInput(t *testing.T) {
	for name, in := range map[string]any{"int": 42, "nil": nil, "map": map[string]any{}} {
		issues := Check(in)
		if len(issues) != 1 || issues[0].Severity != SeverityFatal {
			t.Errorf("%s: got %v, want one fatal issue", name, issues)
		}
	}
	for name, in := range map[string][]byte{
		"empty":       nil,
		"not json":    []byte("<Patient/>"),
		"array":       []byte(`[{"resourceType":"Patient"}]`),
		"no type":     []byte(`{"id":"x"}`),
		"unknown key": []byte(`{"resourceType":"Patient","nickname":"x"}`),
	} {
		issues := Check(in)
		if !HasErrors(issues) || issues[0].Code != CodeStructure {
			t.Errorf("%s: got %v, want a structure error", name, issues)
		}
		if issues[0].Message != "not a valid FHIR R4 resource" {
			t.Errorf("%s: message %q may carry input", name, issues[0].Message)
		}
	}
}

func TestNewCheckerRejectsUnknownProfile(t *testing.T) {
	if _, err := NewChecker(Options{Profiles: []string{Canonical + "/StructureDefinition/nope"}}); err == nil {
		t.Error("want an error for an unknown profile")
	}
	if _, err := NewChecker(Options{Profiles: []string{ProfilePatient + "|0.1.0"}}); err != nil {
		t.Errorf("versioned profile: %v", err)
	}
}

// IPS examples that claim only IPS profiles are valid R4 and, without
// Require, raise no MHP error: the checker only judges what is claimed.
func TestIPSExamplesWithoutClaims(t *testing.T) {
	for _, f := range ipsExamples(t) {
		if issues := Check(readTestdata(t, "ips/"+f)); HasErrors(issues) {
			t.Errorf("%s: %v", f, issues)
		}
	}
}

func ipsExamples(t testing.TB) []string {
	t.Helper()
	return []string{
		"Bundle-bundle-minimal.json",
		"Bundle-bundle-no-info-required-sections.json",
		"Bundle-IPS-examples-Bundle-01.json",
		"Bundle-IPS-examples-Bundle-with-immunization.json",
		"jddamore-IPS-bundle-01.json",
	}
}

// Checked as MHP documents, the IPS examples show what a producer must add
// (the high-water mark) and what older IPS examples lack.
func TestIPSExamplesAsMHPDocuments(t *testing.T) {
	c := newChecker(t, Options{Profiles: []string{ProfileBundle}})
	cases := map[string][]want{
		"Bundle-bundle-minimal.json": {{SeverityError, CodeRequired, "Bundle.meta", "Bundle.meta"}},
		"Bundle-IPS-examples-Bundle-01.json": {
			{SeverityError, CodeRequired, "Bundle.meta", "Bundle.meta"},
			{SeverityError, CodeInvariant, "Bundle.entry[0].resource.section[4]", "ips-comp-1"},
		},
	}
	for f, wants := range cases {
		issues := c.Check(readTestdata(t, "ips/"+f))
		for _, w := range wants {
			if !hasIssue(issues, w) {
				t.Errorf("%s: want %+v, got\n%s", f, w, render(issues))
			}
		}
		if len(issues) != len(wants) {
			t.Errorf("%s: %d issues, want %d:\n%s", f, len(issues), len(wants), render(issues))
		}
	}
}

func TestCheckEmptyContainedResource(t *testing.T) {
	issues := Check(&rpb.ContainedResource{})
	if !HasErrors(issues) {
		t.Errorf("empty ContainedResource: got %v", issues)
	}
}

// One Checker serves many goroutines (run with -race).
func TestCheckerConcurrentUse(t *testing.T) {
	c := newChecker(t, Options{Require: true})
	good := readTestdata(t, "mhp/bundle.json")
	bad := readTestdata(t, "mhp/patient.json")
	bad = bytes.Replace(bad, []byte(`"birthDate"`), []byte(`"deceasedBoolean": false, "_unused"`), 1)
	bad = bytes.Replace(bad, []byte(`"_unused": "1987",`), nil, 1)
	if _, err := r4.Parse(bad); err != nil {
		t.Fatalf("edited patient is not R4: %v", err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				if issues := c.Check(good); len(issues) != 0 {
					errs <- fmt.Sprint("good: ", issues)
				}
				if issues := c.Check(bad); !hasIssue(issues, want{SeverityError, CodeInvariant, "Patient.birthDate", "mhp-pat-1"}) {
					errs <- fmt.Sprint("bad: ", issues)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Require asks for a claim only where an MHP profile is meant: these
// resources need none.
func TestRequireSkipsUnprofiledResources(t *testing.T) {
	c := newChecker(t, Options{Require: true})
	cases := map[string]string{
		"organization": `{"resourceType":"Organization","name":"Clinic"}`,
		"practitioner": `{"resourceType":"Practitioner","name":[{"family":"Doe"}]}`,
		"vital signs": `{"resourceType":"Observation","status":"final",
			"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],
			"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]}}`,
		"searchset": `{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"https://x.example/Organization/1","resource":{"resourceType":"Organization","name":"Clinic"}}]}`,
	}
	for name, in := range cases {
		if issues := c.Check(in); len(issues) != 0 {
			t.Errorf("%s: %v", name, issues)
		}
	}
	// A searchset still gets its profiled entries checked.
	searchset := `{"resourceType":"Bundle","type":"searchset","entry":[{"fullUrl":"https://x.example/Condition/1","resource":{"resourceType":"Condition","subject":{"reference":"Patient/1"}}}]}`
	if !hasIssue(c.Check(searchset), want{SeverityError, CodeProcessing, "Bundle.entry[0].resource", ""}) {
		t.Error("searchset entry without MHP profile passed under Require")
	}
}
