package mappings

import (
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance"
)

// mapped is one fixture resource with what the mapping made of it.
type mapped struct {
	profile, file string
	in            object
	res           Result
	outs          []object
}

// allMapped maps every fixture resource of every profile (those that are
// mappable) with the golden options.
func allMapped(t *testing.T) []mapped {
	t.Helper()
	e := testEngine(t)
	var out []mapped
	for _, profile := range profilesWithFixtures(t) {
		for _, file := range inputFiles(t, profile) {
			for _, raw := range fixtureResources(t, readFixture(t, file)) {
				in, err := decodeObject(raw)
				if err != nil {
					t.Fatal(err)
				}
				res, err := e.Map(profile, raw, testOptions(profile))
				if err != nil {
					continue
				}
				m := mapped{profile: profile, file: file, in: in, res: res}
				for _, o := range res.Outputs {
					ob, err := decodeObject(o.JSON)
					if err != nil {
						t.Fatal(err)
					}
					m.outs = append(m.outs, ob)
				}
				out = append(out, m)
			}
		}
	}
	if len(out) < 100 {
		t.Fatalf("only %d fixture resources mapped", len(out))
	}
	return out
}

// codedElements are the clinical CodeableConcepts whose national codings
// must survive the mapping.
var codedElements = map[string][]string{
	"Condition":           {"code"},
	"AllergyIntolerance":  {"code"},
	"MedicationStatement": {"medicationCodeableConcept"},
	"MedicationRequest":   {"medicationCodeableConcept"},
	"Medication":          {"code"},
	"Immunization":        {"vaccineCode"},
	"Observation":         {"code", "valueCodeableConcept"},
	"Procedure":           {"code"},
}

func codingSet(cc object) map[codingKey]bool {
	out := map[codingKey]bool{}
	for _, c := range objects(cc["coding"]) {
		out[codingKey{getStr(c, "system"), getStr(c, "code")}] = true
	}
	return out
}

// TestNoOriginalCodingLost: every national coding of a clinical code is in
// the output (next to any added international one), except a code the
// spec forbids (ILGIM), which is replaced. A class S observation moved
// into a migration-context keeps its question and answer in a component.
func TestNoOriginalCodingLost(t *testing.T) {
	t.Parallel()
	checked := 0
	for _, m := range allMapped(t) {
		typ := getStr(m.in, "resourceType")
		main := m.outs[0]
		for _, el := range codedElements[typ] {
			in := codingSet(getObj(m.in, el))
			var out map[codingKey]bool
			if isMigrationContext(main) {
				out = map[codingKey]bool{}
				for _, comp := range objects(main["component"]) {
					for k := range codingSet(getObj(comp, "code")) {
						out[k] = true
					}
					for k := range codingSet(getObj(comp, "valueCodeableConcept")) {
						out[k] = true
					}
				}
			} else {
				out = codingSet(getObj(main, el))
			}
			for k := range in {
				checked++
				if _, forbidden := testEngine(t).plans[m.profile].replace[k]; forbidden {
					if out[k] {
						t.Errorf("%s: forbidden code %s was emitted", m.file, k)
					}
					continue
				}
				if !out[k] {
					t.Errorf("%s %s/%s: coding %s of %s lost", m.file, typ, getStr(m.in, "id"), k, el)
				}
			}
		}
	}
	if checked < 150 {
		t.Errorf("only %d codings checked", checked)
	}
}

func isMigrationContext(o object) bool {
	prof, _ := getObj(o, "meta")["profile"].([]any)
	return len(prof) == 1 && prof[0] == conformance.ProfileMigrationContext
}

// TestPartialBirthDateStaysPartial: a year or year-month birth date is
// never completed; a date whose parts are marked placeholders (AU) only
// ever gets shorter.
func TestPartialBirthDateStaysPartial(t *testing.T) {
	t.Parallel()
	partial := 0
	for _, m := range allMapped(t) {
		if getStr(m.in, "resourceType") != "Patient" {
			continue
		}
		in, out := getStr(m.in, "birthDate"), getStr(m.outs[0], "birthDate")
		if len(in) == 4 || len(in) == 7 {
			partial++
			if out != in {
				t.Errorf("%s: partial birth date %q became %q", m.file, in, out)
			}
		}
		if len(out) > len(in) || !strings.HasPrefix(in, out) {
			t.Errorf("%s: birth date %q became %q", m.file, in, out)
		}
		if out == "" && getObj(m.outs[0], "_birthDate") == nil {
			t.Errorf("%s: Patient without birthDate or data-absent-reason", m.file)
		}
	}
	if partial < 5 {
		t.Errorf("only %d partial birth dates in the fixtures", partial)
	}
}

// TestCountriesBecomeAlpha2: an address country that is not ISO alpha-2
// keeps its text and gains an iso21090-SC-coding with an alpha-2 code;
// a citizenship coded in alpha-3 or a national table keeps that coding
// and gains an alpha-2 one.
func TestCountriesBecomeAlpha2(t *testing.T) {
	t.Parallel()
	addresses, concepts := 0, 0
	for _, m := range allMapped(t) {
		if getStr(m.in, "resourceType") != "Patient" {
			continue
		}
		warned := map[string]bool{}
		for _, is := range m.res.Issues {
			if is.Code == codeNotFound {
				warned[is.Path] = true
			}
		}
		inAddr, outAddr := objects(m.in["address"]), objects(m.outs[0]["address"])
		for i := range inAddr {
			text := getStr(inAddr[i], "country")
			if text == "" || i >= len(outAddr) {
				continue
			}
			if got := getStr(outAddr[i], "country"); got != text {
				t.Errorf("%s: address country text %q became %q", m.file, text, got)
			}
			if isAlpha2(text) || warned["Patient.address.country"] {
				continue
			}
			addresses++
			if a2 := scCoding(outAddr[i]); !isAlpha2(a2) {
				t.Errorf("%s: address country %q has no ISO alpha-2 SC-coding (got %q)", m.file, text, a2)
			}
		}
		for _, ext := range objects(m.in["extension"]) {
			if getStr(ext, "url") != "http://hl7.org/fhir/StructureDefinition/patient-citizenship" &&
				getStr(ext, "url") != "http://hl7.org/fhir/StructureDefinition/patient-nationality" {
				continue
			}
			for _, part := range objects(ext["extension"]) {
				in := codingSet(getObj(part, "valueCodeableConcept"))
				national := false
				for k := range in {
					national = national || !(k.system == sysISO3166 && isAlpha2(k.code))
				}
				if !national {
					continue
				}
				found := false
				for _, oext := range objects(m.outs[0]["extension"]) {
					if getStr(oext, "url") != getStr(ext, "url") {
						continue
					}
					for _, opart := range objects(oext["extension"]) {
						out := codingSet(getObj(opart, "valueCodeableConcept"))
						all := true
						for k := range in {
							all = all && out[k]
						}
						if !all {
							continue
						}
						for k := range out {
							if k.system == sysISO3166 && isAlpha2(k.code) {
								found = true
							}
						}
					}
				}
				if !found && !knownStateless(in) {
					t.Errorf("%s: country %v did not gain an alpha-2 coding beside the original", m.file, in)
				}
				concepts++
			}
		}
	}
	if addresses < 4 || concepts < 4 {
		t.Errorf("too few national country codes in the fixtures: %d addresses, %d concepts", addresses, concepts)
	}
}

func knownStateless(in map[codingKey]bool) bool {
	return in[codingKey{"urn:oid:2.16.840.1.113883.2.4.4.16.32", "0499"}]
}

func isAlpha2(s string) bool {
	a, ok := conformance.CountryAlpha2(s)
	return ok && a == s
}

func scCoding(addr object) string {
	for _, e := range objects(getObj(addr, "_country")["extension"]) {
		if getStr(e, "url") == extSCCoding {
			vc := getObj(e, "valueCoding")
			if getStr(vc, "system") == sysISO3166 {
				return getStr(vc, "code")
			}
		}
	}
	return ""
}

// TestClassSNeverInPatient: status-revealing identifiers, firewalled
// extensions, race and ethnicity never appear in an MHP Patient; what the
// firewall moved is in a class S migration-context with the restricted
// labels; no output carries ILGIM; class S outputs are labelled.
func TestClassSNeverInPatient(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	moved := 0
	for _, m := range allMapped(t) {
		p := e.plans[m.profile]
		for i, out := range m.outs {
			cls := m.res.Outputs[i].Class
			if getStr(out, "resourceType") == "Patient" {
				for _, id := range objects(out["identifier"]) {
					var types []codingKey
					for _, c := range objects(getObj(id, "type")["coding"]) {
						types = append(types, codingKey{getStr(c, "system"), getStr(c, "code")})
					}
					if c := p.reg.classify(getStr(id, "system"), types); c == nil || c.action != idKeep {
						t.Errorf("%s: Patient carries identifier %s", m.file, getStr(id, "system"))
					}
				}
				eachExtension(out, func(url string) {
					if r := p.ext[url]; r == nil || r.Action == actFirewall || r.Action == actOriginOnly || r.Action == actReligion {
						t.Errorf("%s: Patient carries extension %s", m.file, url)
					}
				})
			}
			if strings.Contains(string(m.res.Outputs[i].JSON), `"ILGIM"`) {
				t.Errorf("%s: ILGIM emitted", m.file)
			}
			if cls == ClassSensitive {
				if !hasLabel(out, sysConfidentiality, "R") || !hasLabel(out, conformance.CSSensitivity, conformance.CodeMIGSTAT) {
					t.Errorf("%s: class S output without R and MIGSTAT", m.file)
				}
			}
			if isMigrationContext(out) {
				moved++
				if cls != ClassSensitive {
					t.Errorf("%s: migration-context output has class %s", m.file, cls)
				}
				for _, ext := range objects(out["extension"]) {
					if getStr(ext, "url") == extStatusIdentifier && !hasLabel(out, sysActCode, "IDS") {
						t.Errorf("%s: status identifier without IDS", m.file)
					}
				}
			}
		}
	}
	if moved < 6 {
		t.Errorf("only %d migration-contexts in the fixtures", moved)
	}
}

func eachExtension(v any, fn func(url string)) {
	switch x := v.(type) {
	case object:
		for k, e := range x {
			if k == "extension" || k == "modifierExtension" {
				for _, ext := range objects(e) {
					if u := getStr(ext, "url"); strings.Contains(u, ":") {
						fn(u)
					}
				}
			}
			eachExtension(e, fn)
		}
	case []any:
		for _, e := range x {
			eachExtension(e, fn)
		}
	}
}

func hasLabel(o object, system, code string) bool {
	for _, s := range objects(getObj(o, "meta")["security"]) {
		if getStr(s, "system") == system && getStr(s, "code") == code {
			return true
		}
	}
	return false
}

// TestNoUpstreamIDLeaves: with an ID function, no upstream resource id of
// the fixtures appears anywhere in the outputs.
func TestNoUpstreamIDLeaves(t *testing.T) {
	t.Parallel()
	ids := map[string]bool{}
	all := allMapped(t)
	for _, m := range all {
		if id := getStr(m.in, "id"); len(id) >= 8 {
			ids[id] = true
		}
	}
	for _, m := range all {
		for i, o := range m.res.Outputs {
			// Business identifiers may equal a resource id (Synthea does
			// that for Organizations); they are data, not references.
			out := deepCopy(m.outs[i]).(object)
			delete(out, "identifier")
			b, err := encodeObject(out)
			if err != nil {
				t.Fatal(err)
			}
			for id := range ids {
				if strings.Contains(string(b), id) {
					t.Errorf("%s: upstream id %s in a %s output", m.file, id, o.Type)
				}
			}
		}
	}
}

// TestFirewallAgreesWithChecker keeps the shared firewall (common/) and the
// profile checker's invariants (mhp-pat-2, mhp-pat-3) in step: every
// identifier system, identifier type and extension the shared rules move
// out of Patient or keep in the country of origin is one the checker
// refuses in an MHP Patient. (A national spec may withhold more, as AU's
// closing-the-gap-registration; the checker need not know those.)
func TestFirewallAgreesWithChecker(t *testing.T) {
	t.Parallel()
	e := testEngine(t)
	p := e.plans["de-basis"] // no national firewall rules: the shared ones
	patient := func(extra string) []byte {
		return []byte(`{"resourceType":"Patient","id":"p","meta":{"profile":["` + conformance.ProfilePatient + `"]},
		  "name":[{"family":"X"}],"birthDate":"1990",` + extra + `}`)
	}
	refused := func(b []byte, rule string) bool {
		for _, is := range conformance.Check(b) {
			if strings.Contains(is.Rule, rule) && is.Severity == conformance.SeverityError {
				return true
			}
		}
		return false
	}
	if refused(patient(`"gender":"female"`), "mhp-pat") {
		t.Fatal("the checker refuses a plain MHP Patient")
	}
	n := 0
	for sys, c := range p.reg.bySystem {
		if c.action != idFirewall {
			continue
		}
		n++
		if !refused(patient(`"identifier":[{"system":"`+sys+`","value":"1"}]`), "mhp-pat-2") {
			t.Errorf("checker accepts firewalled identifier system %s (%s) in Patient", sys, c.id)
		}
	}
	for k, c := range p.reg.firewallType {
		n++
		system, code, _ := strings.Cut(k, "|")
		if !refused(patient(`"identifier":[{"type":{"coding":[{"system":"`+system+`","code":"`+code+`"}]},"system":"http://example.org/id","value":"1"}]`), "mhp-pat-2") {
			t.Errorf("checker accepts firewalled identifier type %s (%s) in Patient", code, c.id)
		}
	}
	for url, r := range p.ext {
		rule := map[string]string{actFirewall: "mhp-pat-2", actOriginOnly: "mhp-pat-3"}[r.Action]
		if rule == "" {
			continue
		}
		n++
		if !refused(patient(`"extension":[{"url":"`+url+`","valueString":"x"}]`), rule) {
			t.Errorf("checker accepts %s extension %s in Patient", r.Action, url)
		}
	}
	if n < 20 {
		t.Errorf("only %d firewall rules checked", n)
	}
}
