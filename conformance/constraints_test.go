package conformance

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
)

// doc is a decoded JSON resource that a test case edits.
type doc = map[string]any

func load(t *testing.T, name string) doc {
	t.Helper()
	var d doc
	if err := json.Unmarshal(readTestdata(t, "mhp/"+name), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// at walks d by object keys and array indexes; it fails the test when the
// path does not exist, so a case cannot silently edit nothing.
func at(t *testing.T, d any, path ...any) any {
	t.Helper()
	cur := d
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("path %v: %v is not an object", path, k)
			}
			cur, ok = m[k]
			if !ok {
				t.Fatalf("path %v: no key %s", path, k)
			}
		case int:
			a, ok := cur.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("path %v: no index %d", path, k)
			}
			cur = a[k]
		}
	}
	return cur
}

func obj(t *testing.T, d any, path ...any) map[string]any {
	t.Helper()
	m, ok := at(t, d, path...).(map[string]any)
	if !ok {
		t.Fatalf("path %v is not an object", path)
	}
	return m
}

func arr(t *testing.T, d any, path ...any) []any {
	t.Helper()
	a, ok := at(t, d, path...).([]any)
	if !ok {
		t.Fatalf("path %v is not an array", path)
	}
	return a
}

func coding(system, code string) map[string]any {
	return map[string]any{"system": system, "code": code}
}

func concept(system, code string) map[string]any {
	return map[string]any{"coding": []any{coding(system, code)}}
}

// phi are values in the examples that identify the patient; no issue
// message or location may repeat them.
var phi = []string{"Haddad", "Rana", "p-7f3a9c", "Leipzig", "IF-0000-1234", "Amadou", "p-0b41de", "1987", "guess", "XXZ"}

type want struct {
	sev  Severity
	code string
	loc  string
	rule string
}

func TestCheckerFailsOnEachConstraint(t *testing.T) {
	const bundlePatient = "Bundle.entry[1].resource"
	const bundleComp = "Bundle.entry[0].resource"
	cases := []struct {
		name string
		file string
		opts Options
		edit func(t *testing.T, d doc)
		want want
	}{
		// cardinality
		{"min cardinality", "patient.json", Options{}, func(t *testing.T, d doc) { delete(d, "name") },
			want{SeverityError, CodeRequired, "Patient.name", "Patient.name"}},
		{"min cardinality nested", "bundle.json", Options{}, func(t *testing.T, d doc) {
			delete(obj(t, d, "entry", 0, "resource", "section", 1), "title")
		}, want{SeverityError, CodeRequired, bundleComp + ".section[1].title", "Composition.section.title"}},
		{"min cardinality of a 1..1 primitive", "patient.json", Options{}, func(t *testing.T, d doc) {
			delete(d, "birthDate")
			delete(d, "_birthDate")
		}, want{SeverityError, CodeRequired, "Patient.birthDate", "Patient.birthDate"}},
		{"max cardinality of an extension slice", "patient.json", Options{}, func(t *testing.T, d doc) {
			ext := arr(t, d, "extension")
			d["extension"] = append(ext, ext[3])
		}, want{SeverityError, CodeProcessing, "Patient.extension", "Patient.extension:arrival"}},
		{"max cardinality zero", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			d["valueString"] = "refugee"
		}, want{SeverityError, CodeProcessing, "Observation.value[x]", "Observation.value[x]"}},
		{"type not allowed in a choice", "patient.json", Options{}, func(t *testing.T, d doc) {
			date := obj(t, d, "extension", 3, "extension", 0)
			delete(date, "valueDate")
			date["valueDateTime"] = "2015-06-01T10:00:00Z"
		}, want{SeverityError, CodeStructure, "Patient.extension[3].extension[0].valueDateTime", "Extension.extension:date.value[x]"}},

		// fixed and pattern values
		{"fixed value", "bundle.json", Options{}, func(t *testing.T, d doc) { d["type"] = "collection" },
			want{SeverityError, CodeValue, "Bundle.type", "Bundle.type"}},
		{"fixed value in a slice", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "identifier", 0)["use"] = "official"
		}, want{SeverityError, CodeValue, "Patient.identifier[0].use", "Patient.identifier:mpi.use"}},
		{"fixed code in a security slice", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "meta", "security", 1)["code"] = "XXZ"
		}, want{SeverityError, CodeValue, "Observation.meta.security[1].code", "Observation.meta.security:migstat.code"}},
		{"pattern", "bundle.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "entry", 0, "resource")["type"] = concept("http://loinc.org", "34133-9")
		}, want{SeverityError, CodeValue, bundleComp + ".type", "Composition.type"}},
		{"pattern on the migration context code", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			d["code"] = concept("http://loinc.org", "93027-1")
		}, want{SeverityError, CodeValue, "Observation.code", "Observation.code"}},
		{"pattern slice on category", "observation-lab.json", Options{}, func(t *testing.T, d doc) {
			d["category"] = []any{concept("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")}
		}, want{SeverityError, CodeRequired, "Observation.category", "Observation.category:laboratory"}},
		{"provenance activity pattern", "provenance.json", Options{}, func(t *testing.T, d doc) {
			d["activity"] = concept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", "UPDATE")
		}, want{SeverityError, CodeValue, "Provenance.activity", "Provenance.activity"}},

		// extensions
		{"missing required sub-extension", "patient.json", Options{}, func(t *testing.T, d doc) {
			a := obj(t, d, "extension", 3)
			a["extension"] = arr(t, a, "extension")[1:]
		}, want{SeverityError, CodeRequired, "Patient.extension[3].extension", "Extension.extension:date"}},
		{"unknown sub-extension in a closed slicing", "patient.json", Options{}, func(t *testing.T, d doc) {
			a := obj(t, d, "extension", 3)
			a["extension"] = append(arr(t, a, "extension"), map[string]any{"url": "visa-type", "valueString": "x"})
		}, want{SeverityError, CodeStructure, "Patient.extension[3].extension[3]", "Extension.extension"}},
		{"missing required extension by url", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			m := obj(t, d, "meta")
			m["security"] = arr(t, m, "security")[:1]
		}, want{SeverityError, CodeRequired, "Observation.meta.security", "Observation.meta.security:migstat"}},
		{"extension value on a complex extension", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "extension", 3)["valueString"] = "2015"
		}, want{SeverityError, CodeProcessing, "Patient.extension[3].value[x]", "Extension.value[x]"}},
		{"unknown MHP extension", "patient.json", Options{}, func(t *testing.T, d doc) {
			d["extension"] = append(arr(t, d, "extension"), map[string]any{"url": Canonical + "/StructureDefinition/mhp-visa", "valueString": "x"})
		}, want{SeverityError, CodeNotFound, "Patient.extension[4]", ""}},

		// bindings
		{"code outside a required binding", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "extension", 3, "extension", 2)["valueCode"] = "guess"
		}, want{SeverityError, CodeCodeInvalid, "Patient.extension[3].extension[2].valueCode", "Extension.extension:accuracy.value[x]"}},
		{"date accuracy on a primitive", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "_birthDate", "extension", 0)["valueCode"] = "guess"
		}, want{SeverityError, CodeCodeInvalid, "Patient._birthDate.extension[0].valueCode", "Extension.value[x]"}},
		{"country outside ISO 3166-1 alpha-2", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "extension", 3, "extension", 1)["valueCodeableConcept"] = concept(SystemISO3166, "XXZ")
		}, want{SeverityError, CodeCodeInvalid, "Patient.extension[3].extension[1].valueCodeableConcept", "Extension.extension:country.value[x]"}},
		{"migration status outside its ValueSet", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "component", 0)["valueCodeableConcept"] = concept("http://terminology.hl7.org/CodeSystem/v3-RoleCode", "CAS")
		}, want{SeverityError, CodeCodeInvalid, "Observation.component[0].valueCodeableConcept", "Observation.component:migrationStatus.value[x]"}},
		{"migration context not restricted", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "meta", "security", 0)["code"] = "N"
		}, want{SeverityError, CodeCodeInvalid, "Observation.meta.security[0]", "Observation.meta.security:confidentiality"}},
		{"document high-water mark outside its ValueSet", "bundle.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "meta", "security", 0)["code"] = "U"
		}, want{SeverityError, CodeCodeInvalid, "Bundle.meta.security[0]", "Bundle.meta.security:confidentiality"}},

		{"audit agent country outside ISO 3166-1", "auditevent.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "agent", 0, "extension", 1)["valueCode"] = "XXZ"
		}, want{SeverityError, CodeCodeInvalid, "AuditEvent.agent[0].extension[1].valueCode", "Extension.value[x]"}},
		{"audit agent country twice", "auditevent.json", Options{}, func(t *testing.T, d doc) {
			a := obj(t, d, "agent", 0)
			a["extension"] = append(arr(t, a, "extension"), at(t, a, "extension", 1))
		}, want{SeverityError, CodeProcessing, "AuditEvent.agent[0].extension", "AuditEvent.agent.extension:country"}},

		// slicing by identifier system
		{"identifier slice max", "patient.json", Options{}, func(t *testing.T, d doc) {
			ids := arr(t, d, "identifier")
			d["identifier"] = append(ids, map[string]any{"use": "secondary", "system": SIDGatewayPseudonym, "value": "p-1"})
		}, want{SeverityError, CodeProcessing, "Patient.identifier", "Patient.identifier:mpi"}},
		{"identifier slice child min", "patient.json", Options{}, func(t *testing.T, d doc) {
			delete(obj(t, d, "identifier", 0), "value")
		}, want{SeverityError, CodeRequired, "Patient.identifier[0].value", "Patient.identifier:mpi.value"}},

		// IPS document invariants
		{"bdl-ips-1 Composition not first", "bundle.json", Options{}, func(t *testing.T, d doc) {
			e := arr(t, d, "entry")
			e[0], e[1] = e[1], e[0]
		}, want{SeverityError, CodeInvariant, "Bundle.entry[0]", "bdl-ips-1"}},
		{"bdl-ips-1 second Composition", "bundle.json", Options{}, func(t *testing.T, d doc) {
			e := arr(t, d, "entry")
			second := map[string]any{"fullUrl": "https://mhg.example.org/fhir/Composition/comp-2", "resource": at(t, e, 0, "resource")}
			d["entry"] = append(e, second)
		}, want{SeverityError, CodeInvariant, "Bundle.entry[9]", "bdl-ips-1"}},
		{"Bundle.identifier present", "bundle.json", Options{}, func(t *testing.T, d doc) { delete(d, "identifier") },
			want{SeverityError, CodeRequired, "Bundle.identifier", "Bundle.identifier"}},
		{"Bundle.timestamp present", "bundle.json", Options{}, func(t *testing.T, d doc) { delete(d, "timestamp") },
			want{SeverityError, CodeRequired, "Bundle.timestamp", "Bundle.timestamp"}},
		{"entry.fullUrl present", "bundle.json", Options{}, func(t *testing.T, d doc) { delete(obj(t, d, "entry", 3), "fullUrl") },
			want{SeverityError, CodeRequired, "Bundle.entry[3].fullUrl", "Bundle.entry.fullUrl"}},
		{"Patient entry present", "bundle.json", Options{}, func(t *testing.T, d doc) {
			e := arr(t, d, "entry")
			d["entry"] = append([]any{e[0]}, e[2:]...)
		}, want{SeverityError, CodeRequired, "Bundle.entry", "Bundle.entry:patient"}},
		{"ips-comp-1 section without entry or emptyReason", "bundle.json", Options{}, func(t *testing.T, d doc) {
			delete(obj(t, d, "entry", 0, "resource", "section", 6), "emptyReason")
		}, want{SeverityError, CodeInvariant, bundleComp + ".section[6]", "ips-comp-1"}},
		{"section text present", "bundle.json", Options{}, func(t *testing.T, d doc) {
			delete(obj(t, d, "entry", 0, "resource", "section", 0), "text")
		}, want{SeverityError, CodeRequired, bundleComp + ".section[0].text", "Composition.section.text"}},
		{"problems section 11450-4 present", "bundle.json", Options{}, removeSection(0),
			want{SeverityError, CodeRequired, bundleComp + ".section", "Composition.section:sectionProblems"}},
		{"allergies section 48765-2 present", "bundle.json", Options{}, removeSection(1),
			want{SeverityError, CodeRequired, bundleComp + ".section", "Composition.section:sectionAllergies"}},
		{"medications section 10160-0 present", "bundle.json", Options{}, removeSection(2),
			want{SeverityError, CodeRequired, bundleComp + ".section", "Composition.section:sectionMedications"}},
		{"ips-pat-1 name without parts", "patient.json", Options{}, func(t *testing.T, d doc) {
			d["name"] = []any{map[string]any{"use": "official"}}
		}, want{SeverityError, CodeInvariant, "Patient.name[0]", "ips-pat-1"}},
		{"birth date: accuracy without data-absent-reason", "patient-unknown-birthdate.json", Options{}, func(t *testing.T, d doc) {
			b := obj(t, d, "_birthDate")
			b["extension"] = arr(t, b, "extension")[1:]
		}, want{SeverityError, CodeInvariant, "Patient.birthDate", "mhp-pat-1"}},
		{"nested Patient checked through the Bundle slice", "bundle.json", Options{}, func(t *testing.T, d doc) {
			p := obj(t, d, "entry", 1, "resource")
			delete(p, "meta")
			delete(p, "name")
		}, want{SeverityError, CodeRequired, bundlePatient + ".name", "Patient.name"}},

		// MHP rules
		{"mhp-1 ILGIM never emitted", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			cc := obj(t, d, "component", 0, "valueCodeableConcept")
			cc["coding"] = append(arr(t, cc, "coding"), coding("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "ILGIM"))
		}, want{SeverityError, CodeCodeInvalid, "Observation.component[0].valueCodeableConcept.coding[2]", "mhp-1"}},
		{"mhp-pat-2 status-revealing identifier in Patient", "patient.json", Options{}, func(t *testing.T, d doc) {
			d["identifier"] = append(arr(t, d, "identifier"), map[string]any{"system": "urn:oid:1.2.250.1.213.1.4.9", "value": "IF-0000-1234"})
		}, want{SeverityError, CodeInvariant, "Patient.identifier[1]", "mhp-pat-2"}},
		{"mhp-pat-2 residence status extension in Patient", "patient.json", Options{}, func(t *testing.T, d doc) {
			d["extension"] = append(arr(t, d, "extension"), map[string]any{
				"url":                  "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-ResidentialStatus",
				"valueCodeableConcept": concept("https://fhir.hl7.org.uk/CodeSystem/UKCore-ResidentialStatus", "O")})
		}, want{SeverityError, CodeInvariant, "Patient.extension[4]", "mhp-pat-2"}},
		{"mhp-pat-3 race never forwarded", "patient.json", Options{}, func(t *testing.T, d doc) {
			d["extension"] = append(arr(t, d, "extension"), map[string]any{
				"url":       "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race",
				"extension": []any{map[string]any{"url": "text", "valueString": "x"}}})
		}, want{SeverityError, CodeInvariant, "Patient.extension[4]", "mhp-pat-3"}},
		{"mhp-pat-4 alpha-3 country without alpha-2 coding", "patient.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "address", 0)["country"] = "DEU"
		}, want{SeverityWarning, CodeInvariant, "Patient.address[0].country", "mhp-pat-4"}},
		{"mhp-mc-1 identifiers without IDS", "migration-context.json", Options{}, func(t *testing.T, d doc) {
			m := obj(t, d, "meta")
			m["security"] = arr(t, m, "security")[:2]
		}, want{SeverityError, CodeInvariant, "Observation.meta.security", "mhp-mc-1"}},
		{"mhp-bdl-1 migration context in a document", "bundle.json", Options{}, func(t *testing.T, d doc) {
			d["entry"] = append(arr(t, d, "entry"), map[string]any{
				"fullUrl": "https://mhg.example.org/fhir/Observation/mhp-mc-1", "resource": load(t, "migration-context.json")})
		}, want{SeverityWarning, CodeInvariant, "Bundle.entry[9]", "mhp-bdl-1"}},

		// profile claims
		{"profile of another resource type", "condition.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "meta")["profile"] = []any{ProfilePatient}
		}, want{SeverityError, CodeProcessing, "Condition", ""}},
		{"unknown MHP profile", "condition.json", Options{}, func(t *testing.T, d doc) {
			obj(t, d, "meta")["profile"] = []any{Canonical + "/StructureDefinition/mhp-visa"}
		}, want{SeverityError, CodeNotFound, "Condition.meta.profile", ""}},
		{"Require: no MHP profile claimed", "condition.json", Options{Require: true}, func(t *testing.T, d doc) {
			delete(d, "meta")
		}, want{SeverityError, CodeProcessing, "Condition", ""}},
		{"Require: entry without MHP profile", "bundle.json", Options{Require: true}, func(t *testing.T, d doc) {
			delete(obj(t, d, "entry", 2, "resource"), "meta")
		}, want{SeverityError, CodeProcessing, "Bundle.entry[2].resource", ""}},
		{"Require: laboratory Observation without MHP profile", "observation-lab.json", Options{Require: true}, func(t *testing.T, d doc) {
			delete(d, "meta")
		}, want{SeverityError, CodeProcessing, "Observation", ""}},
		{"Require: document Bundle without MHP profile", "bundle.json", Options{Require: true}, func(t *testing.T, d doc) {
			delete(obj(t, d, "meta"), "profile")
		}, want{SeverityError, CodeProcessing, "Bundle", ""}},
		{"Options.Profiles applies a profile not claimed", "condition.json", Options{Profiles: []string{ProfileCondition}}, func(t *testing.T, d doc) {
			delete(d, "meta")
			delete(d, "code")
		}, want{SeverityError, CodeRequired, "Condition.code", "Condition.code"}},
		{"not valid R4", "patient.json", Options{}, func(t *testing.T, d doc) { d["gender"] = "feminine" },
			want{SeverityError, CodeStructure, "", ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := load(t, tc.file)
			tc.edit(t, d)
			b, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			issues := newChecker(t, tc.opts).Check(b)
			if os.Getenv("SHOW") != "" {
				t.Logf("%s", render(issues))
			}
			if !hasIssue(issues, tc.want) {
				t.Errorf("want %+v, got:\n%s", tc.want, render(issues))
			}
			for _, i := range issues {
				for _, v := range phi {
					if strings.Contains(i.Message, v) || strings.Contains(i.Location, v) {
						t.Errorf("issue repeats a patient value %q: %s", v, i)
					}
				}
			}
		})
	}
}

func removeSection(i int) func(t *testing.T, d doc) {
	return func(t *testing.T, d doc) {
		c := obj(t, d, "entry", 0, "resource")
		s := arr(t, c, "section")
		c["section"] = append(append([]any{}, s[:i]...), s[i+1:]...)
	}
}

func hasIssue(issues []Issue, w want) bool {
	for _, i := range issues {
		if i.Severity == w.sev && i.Code == w.code && i.Location == w.loc && i.Rule == w.rule {
			return true
		}
	}
	return false
}

func render(issues []Issue) string {
	var b strings.Builder
	for _, i := range issues {
		fmt.Fprintf(&b, "  %s\n", i)
	}
	if len(issues) == 0 {
		b.WriteString("  (no issues)\n")
	}
	return b.String()
}
