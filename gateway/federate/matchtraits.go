package federate

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/match"
)

// Extensions a Patient carries its country of birth and citizenship in.
const (
	extBirthPlace  = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
	extCitizenship = "http://hl7.org/fhir/StructureDefinition/patient-citizenship"
)

// patientJSON is the part of an R4 Patient that matching reads.
type patientJSON struct {
	ResourceType string `json:"resourceType"`
	Name         []struct {
		Use    string   `json:"use"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
		Text   string   `json:"text"`
	} `json:"name"`
	BirthDate  string `json:"birthDate"`
	Gender     string `json:"gender"`
	Identifier []struct {
		System string `json:"system"`
		Value  string `json:"value"`
	} `json:"identifier"`
	Extension []struct {
		URL          string `json:"url"`
		ValueAddress *struct {
			Country string `json:"country"`
		} `json:"valueAddress"`
		Extension []struct {
			URL                  string `json:"url"`
			ValueCodeableConcept *struct {
				Coding []struct {
					System string `json:"system"`
					Code   string `json:"code"`
				} `json:"coding"`
			} `json:"valueCodeableConcept"`
		} `json:"extension"`
	} `json:"extension"`
}

// PatientTraits reads the traits matching compares from an R4 Patient
// (JSON): its names (official first; maiden and old names too), birth date
// as precise as written, administrative gender, country of birth and
// citizenship (ISO 3166-1 alpha-2 codes, or alpha-3 turned into alpha-2),
// and identifiers (but the gateway's pseudonym). country is the country that keeps the record. The
// error never quotes the resource.
func PatientTraits(b []byte, country string) (match.Traits, error) {
	var p patientJSON
	if err := json.Unmarshal(b, &p); err != nil || p.ResourceType != "Patient" {
		return match.Traits{}, fmt.Errorf("%w: not a Patient resource", ErrInvalid)
	}
	t := match.Traits{Country: country}
	for _, n := range p.Name {
		name := match.Name{Family: n.Family, Given: n.Given}
		if name.Family == "" && len(name.Given) == 0 && n.Text != "" {
			// A name written only as text: its last word is taken as the
			// family name; comparison tries either order anyway.
			words := strings.Fields(n.Text)
			name.Family = words[len(words)-1]
			if len(words) > 1 {
				name.Given = []string{strings.Join(words[:len(words)-1], " ")}
			}
		}
		if name.Family == "" && len(name.Given) == 0 {
			continue
		}
		if n.Use == "official" || n.Use == "usual" {
			t.Names = append([]match.Name{name}, t.Names...)
		} else {
			t.Names = append(t.Names, name)
		}
	}
	if p.BirthDate != "" {
		d, err := match.ParseDate(p.BirthDate)
		if err != nil {
			return match.Traits{}, fmt.Errorf("%w: birthDate is not a FHIR date", ErrInvalid)
		}
		t.BirthDate = d
	}
	switch p.Gender {
	case "male", "female", "other", "unknown":
		t.Sex = p.Gender
	}
	for _, e := range p.Extension {
		switch e.URL {
		case extBirthPlace:
			if e.ValueAddress != nil {
				if c, ok := conformance.CountryAlpha2(e.ValueAddress.Country); ok {
					t.BirthPlace = c
				}
			}
		case extCitizenship:
			for _, sub := range e.Extension {
				if sub.URL != "code" || sub.ValueCodeableConcept == nil {
					continue
				}
				for _, c := range sub.ValueCodeableConcept.Coding {
					if c.System != conformance.SystemISO3166 {
						continue
					}
					if a2, ok := conformance.CountryAlpha2(c.Code); ok && !slices.Contains(t.Citizenship, a2) {
						t.Citizenship = append(t.Citizenship, a2)
					}
				}
			}
		}
	}
	for _, id := range p.Identifier {
		// The gateway's own pseudonym differs for every record by design:
		// it says nothing about the person.
		if id.System != "" && id.Value != "" && id.System != conformance.SIDGatewayPseudonym {
			t.Identifiers = append(t.Identifiers, match.Identifier{System: id.System, Value: id.Value})
		}
	}
	return t, nil
}

// matchPatient renders traits as the R4 Patient a $match request carries
// to a source: only what the traits hold, so that nothing the agreement
// does not allow leaves the gateway.
func matchPatient(t match.Traits) map[string]any {
	p := map[string]any{"resourceType": "Patient"}
	var names []any
	for i, n := range t.Names {
		name := map[string]any{}
		if i == 0 {
			name["use"] = "official"
		}
		if n.Family != "" {
			name["family"] = n.Family
		}
		if len(n.Given) > 0 {
			name["given"] = n.Given
		}
		names = append(names, name)
	}
	if len(names) > 0 {
		p["name"] = names
	}
	if !t.BirthDate.IsZero() {
		p["birthDate"] = t.BirthDate.String()
	}
	if t.Sex != "" {
		p["gender"] = t.Sex
	}
	var ext []any
	if t.BirthPlace != "" {
		ext = append(ext, map[string]any{"url": extBirthPlace, "valueAddress": map[string]any{"country": t.BirthPlace}})
	}
	for _, c := range t.Citizenship {
		ext = append(ext, map[string]any{"url": extCitizenship, "extension": []any{map[string]any{
			"url": "code", "valueCodeableConcept": map[string]any{"coding": []any{map[string]any{"system": conformance.SystemISO3166, "code": c}}},
		}}})
	}
	if len(ext) > 0 {
		p["extension"] = ext
	}
	var ids []any
	for _, id := range t.Identifiers {
		ids = append(ids, map[string]any{"system": id.System, "value": id.Value})
	}
	if len(ids) > 0 {
		p["identifier"] = ids
	}
	return p
}

// MatchParameters renders the Parameters of a Patient/$match request (IHE
// PDQm ITI-119): the Patient, onlyCertainMatches and count.
func MatchParameters(t match.Traits, onlyCertain bool, count int) ([]byte, error) {
	params := []any{map[string]any{"name": "resource", "resource": matchPatient(t)}}
	if onlyCertain {
		params = append(params, map[string]any{"name": "onlyCertainMatches", "valueBoolean": true})
	}
	if count > 0 {
		params = append(params, map[string]any{"name": "count", "valueInteger": count})
	}
	b, err := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": params})
	if err != nil {
		return nil, fmt.Errorf("render $match parameters: %w", err)
	}
	return b, nil
}
