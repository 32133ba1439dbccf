package conformance

import (
	"encoding/json"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// invariantFunc evaluates one invariant on an occurrence of the element it
// is declared on: v is its JSON value, ext the primitive extension object
// (for primitives), loc its location. It returns the locations that break
// the invariant; nil means it holds.
//
// The StructureDefinitions carry each invariant's FHIRPath expression for
// other validators; this checker does not interpret FHIRPath, so every key
// used in a shipped artifact must have a Go implementation here (compile
// refuses an artifact with an unknown key).
type invariantFunc func(v, ext any, loc string) []string

var invariants = map[string]invariantFunc{
	"bdl-ips-1":  compositionFirstAndOnly,
	"ips-comp-1": sectionEntryOrEmptyReason,
	"ips-pat-1":  nameHasPart,
	"mhp-1":      checkedGlobally,
	"mhp-pat-1":  birthDateOrAbsentReason,
	"mhp-pat-2":  noClassSInPatient,
	"mhp-pat-3":  noOriginOnlyExtensions,
	"mhp-pat-4":  addressCountryAlpha2,
	"mhp-bdl-1":  noMigrationContextEntry,
	"mhp-mc-1":   statusIdentifierLabelledIDS,
}

// checkedGlobally stands for mhp-1 (no ILGIM code): walker.forbidden checks
// it over the whole document, so that resources claiming no profile, and
// codes inside contained resources, are covered once.
func checkedGlobally(any, any, string) []string { return nil }

func fail(loc string) []string { return []string{loc} }

func asObject(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

func asArray(v any) []any {
	switch x := v.(type) {
	case []any:
		return x
	case nil:
		return nil
	default:
		return []any{x}
	}
}

func present(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		return x != ""
	case []any:
		return len(x) > 0
	case map[string]any:
		return len(x) > 0
	default:
		return true
	}
}

// compositionFirstAndOnly is bdl-ips-1: the first entry is a Composition
// and no other entry is one.
func compositionFirstAndOnly(v, _ any, loc string) []string {
	entries := asArray(asObject(v)["entry"])
	var out []string
	for i, e := range entries {
		rt, _ := asObject(asObject(e)["resource"])["resourceType"].(string)
		switch {
		case i == 0 && rt != "Composition":
			out = append(out, loc+".entry[0]")
		case i > 0 && rt == "Composition":
			out = append(out, loc+".entry["+strconv.Itoa(i)+"]")
		}
	}
	if len(entries) == 0 {
		out = append(out, loc)
	}
	return out
}

// sectionEntryOrEmptyReason is ips-comp-1.
func sectionEntryOrEmptyReason(v, _ any, loc string) []string {
	s := asObject(v)
	if present(s["entry"]) || present(s["emptyReason"]) {
		return nil
	}
	return fail(loc)
}

// nameHasPart is ips-pat-1.
func nameHasPart(v, _ any, loc string) []string {
	n := asObject(v)
	if present(n["family"]) || present(n["given"]) || present(n["text"]) {
		return nil
	}
	return fail(loc)
}

const (
	extDataAbsentReason = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
	extSCCoding         = "http://hl7.org/fhir/StructureDefinition/iso21090-SC-coding"
	systemV3ActCode     = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
)

func hasExtension(obj map[string]any, url string) bool {
	for _, e := range asArray(obj["extension"]) {
		if u, _ := asObject(e)["url"].(string); u == url {
			return true
		}
	}
	return false
}

// birthDateOrAbsentReason is mhp-pat-1: IPS makes birthDate 1..1, and an
// undocumented birth date is said with data-absent-reason, never invented.
func birthDateOrAbsentReason(v, _ any, loc string) []string {
	p := asObject(v)
	if s, _ := p["birthDate"].(string); s != "" {
		return nil
	}
	if hasExtension(asObject(p["_birthDate"]), extDataAbsentReason) {
		return nil
	}
	return fail(loc + ".birthDate")
}

// The lists of mhp-pat-2 have one home: the invariant's FHIRPath in the
// shipped mhp-patient profile (which other validators run). The Go check
// reads them from there, and the mapping's identifier registry is tested
// against StatusRevealing.
var statusRevealingSystems, statusRevealingTypes, statusExtensions = patientInvariantLists("mhp-pat-2")

// StatusRevealing returns what mhp-pat-2 forbids in a Patient: identifier
// systems and identifier type codes whose mere presence reveals a
// migration or residence status (reference §2.2, a.5), and extensions that
// carry one. They are class S: the mapping moves them to
// mhp-migration-context.
func StatusRevealing() (systems, typeCodes, extensions []string) {
	return slices.Sorted(maps.Keys(statusRevealingSystems)), slices.Sorted(maps.Keys(statusRevealingTypes)),
		slices.Sorted(maps.Keys(statusExtensions))
}

// patientInvariantLists reads the string lists of an mhp-patient
// invariant written as "identifier.where(system in (...)) ...
// coding.where(code in (...)) ... extension.where(url in (...))".
func patientInvariantLists(key string) (systems, codes, urls map[string]bool) {
	systems, codes, urls = map[string]bool{}, map[string]bool{}, map[string]bool{}
	expr := invariantExpression(ProfilePatient, key)
	for _, l := range []struct {
		name string
		into map[string]bool
	}{{"system", systems}, {"code", codes}, {"url", urls}} {
		_, rest, ok := strings.Cut(expr, l.name+" in (")
		if !ok {
			continue
		}
		list, _, _ := strings.Cut(rest, ")")
		for _, q := range strings.Split(list, "|") {
			if v := strings.Trim(strings.TrimSpace(q), "'"); v != "" {
				l.into[v] = true
			}
		}
	}
	return systems, codes, urls
}

// invariantExpression is the FHIRPath of one constraint of a shipped
// profile, or "".
func invariantExpression(profile, key string) string {
	a, ok := Artifact(profile)
	if !ok {
		return ""
	}
	var sd struct {
		Differential struct {
			Element []struct {
				Constraint []struct {
					Key        string `json:"key"`
					Expression string `json:"expression"`
				} `json:"constraint"`
			} `json:"element"`
		} `json:"differential"`
	}
	if err := json.Unmarshal(a.JSON, &sd); err != nil {
		return ""
	}
	for _, e := range sd.Differential.Element {
		for _, c := range e.Constraint {
			if c.Key == key {
				return c.Expression
			}
		}
	}
	return ""
}

// originOnlyExtensions never leave the country of origin (race,
// ethnicity, indigenous status, tribe, iwi).
var originOnlyExtensions = map[string]bool{
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race":                        true,
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity":                   true,
	"http://hl7.org/fhir/us/core/StructureDefinition/us-core-tribal-affiliation":          true,
	"https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory":         true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-ethnicity":                   true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-aboriginalidentityindicator": true,
	"http://hl7.org/fhir/ca/baseline/StructureDefinition/ext-aboriginalidentitygroup":     true,
	"http://hl7.org.au/fhir/StructureDefinition/indigenous-status":                        true,
	"http://hl7.org.au/fhir/StructureDefinition/ethnicity":                                true,
	"http://hl7.org.nz/fhir/StructureDefinition/nz-ethnicity":                             true,
	"http://hl7.org.nz/fhir/StructureDefinition/nz-iwi":                                   true,
}

// noClassSInPatient is mhp-pat-2.
func noClassSInPatient(v, _ any, loc string) []string {
	p := asObject(v)
	var out []string
	for i, id := range asArray(p["identifier"]) {
		obj := asObject(id)
		l := loc + ".identifier[" + strconv.Itoa(i) + "]"
		if sys, _ := obj["system"].(string); statusRevealingSystems[sys] {
			out = append(out, l)
			continue
		}
		for _, c := range asArray(asObject(obj["type"])["coding"]) {
			if code, _ := asObject(c)["code"].(string); statusRevealingTypes[code] {
				out = append(out, l)
				break
			}
		}
	}
	for i, e := range asArray(p["extension"]) {
		if u, _ := asObject(e)["url"].(string); statusExtensions[u] {
			out = append(out, loc+".extension["+strconv.Itoa(i)+"]")
		}
	}
	return out
}

// noOriginOnlyExtensions is mhp-pat-3.
func noOriginOnlyExtensions(v, _ any, loc string) []string {
	var out []string
	for i, e := range asArray(asObject(v)["extension"]) {
		if u, _ := asObject(e)["url"].(string); originOnlyExtensions[u] {
			out = append(out, loc+".extension["+strconv.Itoa(i)+"]")
		}
	}
	return out
}

// addressCountryAlpha2 is mhp-pat-4 (a warning): the mapping normalises
// countries to alpha-2, or keeps the original text and adds the alpha-2
// code in iso21090-SC-coding.
func addressCountryAlpha2(v, _ any, loc string) []string {
	var out []string
	for i, a := range asArray(asObject(v)["address"]) {
		addr := asObject(a)
		c, hasC := addr["country"].(string)
		if !hasC {
			continue
		}
		if len(c) == 2 && strings.ToUpper(c) == c {
			if _, ok := CountryAlpha2(c); ok {
				continue
			}
		}
		if hasExtension(asObject(addr["_country"]), extSCCoding) {
			continue
		}
		out = append(out, loc+".address["+strconv.Itoa(i)+"].country")
	}
	return out
}

// noMigrationContextEntry is mhp-bdl-1 (a warning): class S stays out of
// documents unless the patient consented, which the document cannot show.
func noMigrationContextEntry(v, _ any, loc string) []string {
	var out []string
	for i, e := range asArray(asObject(v)["entry"]) {
		res := asObject(asObject(e)["resource"])
		for _, p := range asArray(asObject(res["meta"])["profile"]) {
			if s, _ := p.(string); strings.HasPrefix(s, ProfileMigrationContext) {
				out = append(out, loc+".entry["+strconv.Itoa(i)+"]")
				break
			}
		}
	}
	return out
}

// statusIdentifierLabelledIDS is mhp-mc-1.
func statusIdentifierLabelledIDS(v, _ any, loc string) []string {
	obs := asObject(v)
	if !hasExtension(obs, ExtStatusIdentifier) {
		return nil
	}
	for _, s := range asArray(asObject(obs["meta"])["security"]) {
		c := asObject(s)
		if sys, _ := c["system"].(string); sys == systemV3ActCode {
			if code, _ := c["code"].(string); code == "IDS" {
				return nil
			}
		}
	}
	return fail(loc + ".meta.security")
}
