package mappings

import (
	"encoding/json"
	"io/fs"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const (
	sysGM  = "http://fhir.de/CodeSystem/bfarm/icd-10-gm"
	sysCM  = "http://hl7.org/fhir/sid/icd-10-cm"
	sysCIM = "https://smt.esante.gouv.fr/terminologie-cim-10/"
)

// codeRuleMap finds a compiled code rule by id among the translate maps of
// a profile.
func codeRuleMap(t *testing.T, profile, id string) *conceptMap {
	t.Helper()
	p := testEngine(t).plans[profile]
	if p == nil {
		t.Fatalf("no profile %s", profile)
	}
	for _, rules := range p.translate {
		for _, r := range rules {
			for _, cm := range r.maps {
				if cm.id == id && cm.rule != nil {
					return cm
				}
			}
		}
	}
	t.Fatalf("profile %s translates with no code rule %s", profile, id)
	return nil
}

func TestCodeRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, profile, rule, system, code string
		// want is "" when no WHO code exists; recognised false when the
		// code is not written as a code of the edition.
		want, equivalence string
		recognised        bool
	}{
		{"GM code WHO has", "de-basis", "icd-10-gm-to-icd-10", sysGM, "J45.9", "J45.9", "equivalent", true},
		{"GM 3-character category", "de-basis", "icd-10-gm-to-icd-10", sysGM, "I10", "I10", "equivalent", true},
		{"GM fifth character", "de-basis", "icd-10-gm-to-icd-10", sysGM, "E11.90", "E11.9", "wider", true},
		{"GM subcategory WHO defines once for a range", "de-basis", "icd-10-gm-to-icd-10", sysGM, "F10.2", "F10.2", "equivalent", true},
		{"GM fourth character WHO lacks", "de-basis", "icd-10-gm-to-icd-10", sysGM, "K52.30", "K52.3", "wider", true},
		{"GM dagger", "de-basis", "icd-10-gm-to-icd-10", sysGM, "A17.0†", "A17.0", "equivalent", true},
		{"GM dagger written +", "de-basis", "icd-10-gm-to-icd-10", sysGM, "A17.0+", "A17.0", "equivalent", true},
		{"GM asterisk", "de-basis", "icd-10-gm-to-icd-10", sysGM, "G01*", "G01", "equivalent", true},
		{"GM exclamation mark, WHO code", "de-basis", "icd-10-gm-to-icd-10", sysGM, "B95.2!", "B95.2", "equivalent", true},
		{"GM-only category", "de-basis", "icd-10-gm-to-icd-10", sysGM, "U69.10!", "", "unmatched", true},
		{"GM HIV stage", "de-basis", "icd-10-gm-to-icd-10", sysGM, "U60.2!", "", "unmatched", true},
		{"GM certainty letter in the code", "de-basis", "icd-10-gm-to-icd-10", sysGM, "E11.90V", "", "", false},
		{"GM empty code", "de-basis", "icd-10-gm-to-icd-10", sysGM, "", "", "", false},
		{"GM lower case", "de-basis", "icd-10-gm-to-icd-10", sysGM, "e11.9", "", "", false},
		{"GM rule in CH Core", "ch-core", "icd-10-gm-to-icd-10", sysGM, "A15.0", "A15.0", "equivalent", true},
		{"CM code WHO has", "us-core", "icd-10-cm-to-icd-10", sysCM, "E11.9", "E11.9", "equivalent", true},
		{"CM seventh character", "us-core", "icd-10-cm-to-icd-10", sysCM, "S72.001A", "S72.0", "wider", true},
		{"CM placeholder X", "us-core", "icd-10-cm-to-icd-10", sysCM, "T81.4XXA", "T81.4", "wider", true},
		{"CM without the dot", "us-core", "icd-10-cm-to-icd-10", sysCM, "E119", "E11.9", "equivalent", true},
		{"CM letter in the third place", "us-core", "icd-10-cm-to-icd-10", sysCM, "Z3A.20", "", "unmatched", true},
		{"CM category WHO lacks", "us-core", "icd-10-cm-to-icd-10", sysCM, "E08.9", "", "unmatched", true},
		{"CM exception: other meaning in WHO", "us-core", "icd-10-cm-to-icd-10", sysCM, "E11.0", "E11", "wider", true},
		{"CM exception: without coma", "us-core", "icd-10-cm-to-icd-10", sysCM, "E11.00", "E11", "wider", true},
		{"CM exception listed under an exception", "us-core", "icd-10-cm-to-icd-10", sysCM, "E11.01", "E11.0", "wider", true},
		{"CM descendant of an exception", "us-core", "icd-10-cm-to-icd-10", sysCM, "J45.990", "J45", "wider", true},
		{"CM descendant of a listed child", "us-core", "icd-10-cm-to-icd-10", sysCM, "J45.909", "J45.9", "wider", true},
		{"CM trailing dash", "us-core", "icd-10-cm-to-icd-10", sysCM, "E11.9-", "", "", false},
		{"CIM-10 extension", "fr-core", "cim-10-to-icd-10", sysCIM, "S06.0+0", "S06.0", "wider", true},
		{"CIM-10 without the dot", "fr-core", "cim-10-to-icd-10", sysCIM, "E1190", "E11.9", "wider", true},
		{"CIM-10 dagger", "fr-core", "cim-10-to-icd-10", sysCIM, "A17.0†", "A17.0", "equivalent", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cm := codeRuleMap(t, tc.profile, tc.rule)
			trs, covered := cm.lookup(tc.system, tc.code)
			if !covered {
				t.Fatal("the rule does not cover its own source system")
			}
			if !tc.recognised {
				if len(trs) != 0 {
					t.Fatalf("%q read as a code: %+v", tc.code, trs)
				}
				return
			}
			if len(trs) != 1 {
				t.Fatalf("translations = %+v, want one", trs)
			}
			tr := trs[0]
			if tr.system != sysICD10 || tr.code != tc.want || tr.equivalence != tc.equivalence {
				t.Errorf("%s -> %s#%s (%s), want %s (%s)", tc.code, tr.system, tr.code, tr.equivalence, tc.want, tc.equivalence)
			}
			if tr.code != "" && !cm.rule.who.has(tr.code) {
				t.Errorf("%s is not a WHO ICD-10 code", tr.code)
			}
		})
	}
	if trs, covered := codeRuleMap(t, "de-basis", "icd-10-gm-to-icd-10").lookup(sysCM, "E11.9"); covered || trs != nil {
		t.Error("the ICD-10-GM rule claims ICD-10-CM codes")
	}
}

// TestWHOCodeList checks the shipped WHO ICD-10 list: its form, that every
// subcategory has its category, that it has the codes the rules and labels
// rely on, and that it lacks what it deliberately leaves out.
func TestWHOCodeList(t *testing.T) {
	t.Parallel()
	b, err := fs.ReadFile(Specs, "common/codelists/icd-10-who.txt")
	if err != nil {
		t.Fatal(err)
	}
	l, err := loadCodeList("common/codelists/icd-10-who.txt", b)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(l.codes); n != 12297 {
		t.Errorf("%d codes, want 12297 (the count the file's header states)", n)
	}
	if !strings.Contains(string(b), "# 12297 codes.") {
		t.Error("the header does not state the count")
	}
	form := regexp.MustCompile(`^[A-Z][0-9]{2}(\.[0-9])?$`)
	for c := range l.codes {
		if !form.MatchString(c) {
			t.Errorf("%q is not a WHO ICD-10 category or subcategory", c)
		}
		if len(c) == 5 && !l.has(c[:3]) {
			t.Errorf("%s has no category %s", c, c[:3])
		}
	}
	for _, c := range []string{"A00", "A00.0", "B20", "B24", "Z21", "F10.2", "F19.9", "E11.9", "E14.0", "K25.9", "U07.1", "U07.2", "G01", "A17.0", "F43.1"} {
		if !l.has(c) {
			t.Errorf("%s missing", c)
		}
	}
	// Not WHO codes: ICD-10-CM and ICD-10-GM additions, K25.8 (no such
	// subdivision), and the place-of-occurrence characters of chapter XX.
	for _, c := range []string{"E08", "Z3A", "U60", "U69", "K25.8", "W00.0", "E11.90"} {
		if l.has(c) {
			t.Errorf("%s should not be a WHO ICD-10 code", c)
		}
	}
}

// TestLabelsThroughCodeRules: the sensitivity labels key on WHO ICD-10
// codes; a national code the rules reach gets them too. CIM-10 has no
// label rule of its own, so its labels come only through the rule.
func TestLabelsThroughCodeRules(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	tests := []struct {
		profile, system, code string
		want                  []string
	}{
		{"fr-core", sysCIM, "B24", []string{"HIV"}},
		{"fr-core", sysCIM, "F10.20", []string{"SUD"}},
		{"fr-core", sysCIM, "F32.1", []string{"PSY"}},
		{"fr-core", sysCIM, "E11.9", nil},
		{"us-core", sysCM, "F43.10", []string{"PSY"}},
		{"us-core", sysCM, "F11.20", []string{"SUD"}},
		{"us-core", sysCM, "B20", []string{"HIV"}},
		{"de-basis", sysGM, "F10.2", []string{"SUD"}},
		{"de-basis", sysGM, "U61.1!", []string{"HIV"}},
	}
	for _, tc := range tests {
		t.Run(tc.profile+" "+tc.code, func(t *testing.T) {
			in, _ := json.Marshal(map[string]any{
				"resourceType": "Condition", "id": "c1", "subject": map[string]any{"reference": "Patient/p1"},
				"code": map[string]any{"coding": []any{map[string]any{"system": tc.system, "code": tc.code}}},
			})
			res, err := e.Map(tc.profile, in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			var out struct {
				Meta struct {
					Security []struct{ System, Code string }
				}
			}
			if err := json.Unmarshal(res.Outputs[0].JSON, &out); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range out.Meta.Security {
				if s.System == sysActCode {
					got = append(got, s.Code)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("labels = %v, want %v", got, tc.want)
			}
		})
	}
}

// FuzzICDCode feeds outside codes to every edition's reader: no panic, and
// a code it accepts is written with at most one dot, after the category.
func FuzzICDCode(f *testing.F) {
	for _, s := range []string{"E11.90", "A17.0†", "G01*", "U69.10!", "S72.001A", "E119", "S06.0+0", "", "†", "E", "E1", "E11.", "\xff", "A00.0††"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, code string) {
		for name, ed := range icdEditions {
			norm, ok := ed.normalise(code)
			if !ok {
				continue
			}
			if strings.Count(norm, ".") > 1 || len(norm) < 3 || (strings.Contains(norm, ".") && strings.Index(norm, ".") != 3) {
				t.Errorf("%s: %q read as %q", name, code, norm)
			}
			steps := 0
			for c := norm; len(c) >= 3; c = icdParent(c) {
				steps++
			}
			if steps > len(norm) {
				t.Errorf("%s: walking up from %q took %d steps", name, norm, steps)
			}
		}
	})
}

// TestDemoTablesAreReported: a code added from a ConceptMap published as
// experimental (a demonstration table) is reported as illustrative; one
// added by a code rule or a curated ConceptMap is not.
func TestDemoTablesAreReported(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	cond := func(system, code string) []byte {
		b, _ := json.Marshal(map[string]any{
			"resourceType": "Condition", "id": "c1", "subject": map[string]any{"reference": "Patient/p1"},
			"code": map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}},
		})
		return b
	}
	immunization, _ := json.Marshal(map[string]any{
		"resourceType": "Immunization", "id": "i1", "status": "completed", "patient": map[string]any{"reference": "Patient/p1"},
		"occurrenceDateTime": "2020-01-01",
		"vaccineCode":        map[string]any{"coding": []any{map[string]any{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}}},
	})
	tests := []struct {
		name, profile string
		in            []byte
		wantDemo      bool
	}{
		{"code rule", "ch-core", cond(sysGM, "E11.90"), false},
		{"curated exceptions", "us-core", cond(sysCM, "E11.00"), false},
		{"demonstration ConceptMap", "us-core", immunization, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := e.Map(tc.profile, tc.in, Options{})
			if err != nil {
				t.Fatal(err)
			}
			demo := false
			for _, is := range res.Issues {
				if strings.Contains(is.Message, "demonstration table") {
					demo = true
					if is.Severity != sevWarning {
						t.Errorf("demonstration issue has severity %s, want warning", is.Severity)
					}
				}
			}
			if demo != tc.wantDemo {
				t.Errorf("reported as demonstration: %v, want %v (issues %+v)", demo, tc.wantDemo, res.Issues)
			}
		})
	}
}
