package measures

import (
	"fmt"
	"strings"

	"github.com/migrant-health/mhg/conformance"
)

// CSStratifier is the code system of the strata catalogue
// (CodeSystem-mhp-stratifier.json): the codes of MeasureReport stratifier
// components.
const CSStratifier = conformance.Canonical + "/CodeSystem/mhp-stratifier"

// Data classes of a stratum (conformance README, "Data classes").
const (
	// ClassProtected strata (sex, age, country of birth, citizenship) are
	// aggregate dimensions only, never inputs to a decision.
	ClassProtected = "P"
	// ClassSensitive strata (migration status, length of stay) come from
	// the firewalled migration context: only where an agreement allows
	// them.
	ClassSensitive = "S"
	// ClassContext strata say where a record came from (reporting country).
	ClassContext = "C"
)

// Unknown is the category of a subject whose record does not say.
const Unknown = "unknown"

// Stratifier is one entry of the fixed strata catalogue.
type Stratifier struct {
	// Code names it in requests (by=sex,age-band-5) and reports.
	Code string
	// Display is its name for people.
	Display string
	// Class is ClassProtected, ClassSensitive or ClassContext.
	Class string
	// PatientElements are the top-level elements of the MHP Patient the
	// category is computed from (gender for sex); a class S stratum reads
	// the migration context besides.
	PatientElements []string
	// value computes the category of a subject.
	value func(s *Subject, p Period, country string) string
}

// Category returns the stratum of a subject: the category code, or Unknown.
// country is the reporting country (the source's).
func (st Stratifier) Category(s *Subject, p Period, country string) string {
	return st.value(s, p, country)
}

var catalogue = []Stratifier{
	{Code: "sex", Display: "Sex (administrative gender)", Class: ClassProtected, PatientElements: []string{"gender"}, value: sexOf},
	{Code: "age-band-5", Display: "Age at the end of the period, 5-year bands", Class: ClassProtected, PatientElements: []string{"birthDate"}, value: ageBand(fiveYearBands)},
	{Code: "age-band-who", Display: "Age at the end of the period, WHO broad bands", Class: ClassProtected, PatientElements: []string{"birthDate"}, value: ageBand(whoBands)},
	{Code: "country-of-birth", Display: "Country of birth", Class: ClassProtected, PatientElements: []string{"extension"}, value: countryOfBirth},
	{Code: "citizenship", Display: "Citizenship (the first one recorded)", Class: ClassProtected, PatientElements: []string{"extension"}, value: citizenship},
	{Code: "migration-status", Display: "Migration status category", Class: ClassSensitive, value: migrationStatus},
	{Code: "length-of-stay", Display: "Length of stay at the end of the period", Class: ClassSensitive, PatientElements: []string{"extension"}, value: lengthOfStay},
	{Code: "reporting-country", Display: "Reporting country (the source's)", Class: ClassContext, value: func(_ *Subject, _ Period, c string) string { return c }},
}

// Strata returns the catalogue, in its fixed order.
func Strata() []Stratifier { return append([]Stratifier(nil), catalogue...) }

// StratifierByCode finds a catalogue entry.
func StratifierByCode(code string) (Stratifier, bool) {
	for _, s := range catalogue {
		if s.Code == code {
			return s, true
		}
	}
	return Stratifier{}, false
}

func sexOf(s *Subject, _ Period, _ string) string {
	switch g, _ := s.Patient["gender"].(string); g {
	case "male", "female", "other":
		return g
	}
	return Unknown
}

type band struct {
	from int
	code string
}

var fiveYearBands = func() []band {
	var out []band
	for a := 0; a < 85; a += 5 {
		out = append(out, band{a, fmt.Sprintf("%d-%d", a, a+4)})
	}
	return append(out, band{85, "85+"})
}()

// whoBands are the age groups of WHO's tuberculosis and HIV reporting.
var whoBands = []band{{0, "0-4"}, {5, "5-14"}, {15, "15-24"}, {25, "25-34"}, {35, "35-44"}, {45, "45-54"}, {55, "55-64"}, {65, "65+"}}

func ageBand(bands []band) func(*Subject, Period, string) string {
	return func(s *Subject, p Period, _ string) string {
		raw, _ := s.Patient["birthDate"].(string)
		b, ok := parseDate(raw)
		if !ok {
			return Unknown
		}
		age, ok := yearsBetween(b, dateOf(p.End))
		if !ok || age < 0 {
			return Unknown
		}
		code := bands[0].code
		for _, bd := range bands {
			if age >= bd.from {
				code = bd.code
			}
		}
		return code
	}
}

// countryOfBirth reads patient-birthPlace: the alpha-2 code of its
// iso21090-SC-coding, else Address.country when it is an alpha-2 code.
func countryOfBirth(s *Subject, _ Period, _ string) string {
	for _, ext := range objectsOf(s.Patient["extension"]) {
		if ext["url"] != "http://hl7.org/fhir/StructureDefinition/patient-birthPlace" {
			continue
		}
		addr, _ := ext["valueAddress"].(map[string]any)
		if addr == nil {
			continue
		}
		if c := alpha2FromCountryElement(addr); c != "" {
			return c
		}
	}
	return Unknown
}

func alpha2FromCountryElement(addr map[string]any) string {
	if ce, ok := addr["_country"].(map[string]any); ok {
		for _, ext := range objectsOf(ce["extension"]) {
			if ext["url"] != "http://hl7.org/fhir/StructureDefinition/iso21090-SC-coding" {
				continue
			}
			if cd, ok := ext["valueCoding"].(map[string]any); ok && cd["system"] == conformance.SystemISO3166 {
				if code, _ := cd["code"].(string); len(code) == 2 {
					return code
				}
			}
		}
	}
	if c, _ := addr["country"].(string); len(c) == 2 && strings.ToUpper(c) == c {
		if a2, ok := conformance.CountryAlpha2(c); ok {
			return a2
		}
	}
	return ""
}

// citizenship reads the first patient-citizenship with an ISO 3166 code.
func citizenship(s *Subject, _ Period, _ string) string {
	for _, ext := range objectsOf(s.Patient["extension"]) {
		if ext["url"] != "http://hl7.org/fhir/StructureDefinition/patient-citizenship" {
			continue
		}
		for _, sub := range objectsOf(ext["extension"]) {
			if sub["url"] != "code" {
				continue
			}
			cc, _ := sub["valueCodeableConcept"].(map[string]any)
			for _, cd := range objectsOf(cc["coding"]) {
				if cd["system"] == conformance.SystemISO3166 {
					if code, _ := cd["code"].(string); code != "" {
						if a2, ok := conformance.CountryAlpha2(code); ok {
							return a2
						}
					}
				}
			}
		}
	}
	return Unknown
}

// NotRecorded is the migration-status category of a subject whose record
// holds no migration status.
const NotRecorded = "not-recorded"

// migrationStatus reads the migration-status component of the subject's
// migration-context Observations (the first status found).
func migrationStatus(s *Subject, _ Period, _ string) string {
	for _, obs := range s.Resources["Observation"] {
		if !isMigrationContext(obs) {
			continue
		}
		for _, comp := range objectsOf(obs["component"]) {
			if !hasCoding(comp["code"], conformance.CSContextItem, "migration-status") {
				continue
			}
			cc, _ := comp["valueCodeableConcept"].(map[string]any)
			for _, cd := range objectsOf(cc["coding"]) {
				if cd["system"] == conformance.CSMigrationStatus {
					if code, _ := cd["code"].(string); code != "" {
						return code
					}
				}
			}
		}
	}
	return NotRecorded
}

// IsMigrationContext says whether an MHP resource is a migration context
// (class S).
func isMigrationContext(r map[string]any) bool {
	return r["resourceType"] == "Observation" && hasCoding(r["code"], conformance.CSContextItem, "migration-context")
}

// lengthOfStay is the time from the mhp-arrival date to the end of the
// period, in bands.
func lengthOfStay(s *Subject, p Period, _ string) string {
	for _, ext := range objectsOf(s.Patient["extension"]) {
		if ext["url"] != conformance.ExtArrival {
			continue
		}
		for _, sub := range objectsOf(ext["extension"]) {
			if sub["url"] != "date" {
				continue
			}
			raw, _ := sub["valueDate"].(string)
			d, ok := parseDate(raw)
			if !ok {
				continue
			}
			years, ok := yearsBetween(d, dateOf(p.End))
			switch {
			case !ok || years < 0:
				return Unknown
			case years < 1:
				return "under-1"
			case years < 5:
				return "1-4"
			case years < 10:
				return "5-9"
			}
			return "10+"
		}
	}
	return Unknown
}

func objectsOf(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, x := range list {
		if m, ok := x.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func hasCoding(cc any, system, code string) bool {
	m, _ := cc.(map[string]any)
	for _, cd := range objectsOf(m["coding"]) {
		if cd["system"] == system && cd["code"] == code {
			return true
		}
	}
	return false
}

// Concept renders a category of a stratifier as the CodeableConcept of a
// MeasureReport stratum component: a coding where a code system exists
// (administrative gender, ISO 3166, mhp-migration-status), the band as text
// otherwise; Unknown and NotRecorded as data-absent-reason codes.
func Concept(stratifier, category string) map[string]any {
	switch category {
	case Unknown, NotRecorded:
		return map[string]any{
			"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": Unknown}},
			"text":   category,
		}
	}
	coding := func(system string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": system, "code": category}}, "text": category}
	}
	switch stratifier {
	case "sex":
		return coding("http://hl7.org/fhir/administrative-gender")
	case "country-of-birth", "citizenship", "reporting-country":
		return coding(conformance.SystemISO3166)
	case "migration-status":
		return coding(conformance.CSMigrationStatus)
	}
	return map[string]any{"text": category}
}
