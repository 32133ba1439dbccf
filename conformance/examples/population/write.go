package population

import (
	"encoding/json"
	"fmt"
)

// coding is a code in a code system.
type coding struct{ system, code, display string }

// codes are, per profile, how each kind of fact is coded: what the
// national systems of the demo sources use.
var codes = map[string]map[string]coding{
	"de-basis": {
		TB:           {"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "A15.0", "Lungentuberkulose"},
		Diabetes:     {"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "E11.9", "Diabetes mellitus, Typ 2"},
		HIV:          {"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "B24", "HIV-Krankheit"},
		"mcv":        {"http://fhir.de/CodeSystem/bfarm/atc", "J07BD52", "Masern, Kombinationen mit Mumps und Röteln"},
		Hypertension: {"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "I10.90", "Essentielle Hypertonie, nicht näher bezeichnet"},
		Asthma:       {"http://fhir.de/CodeSystem/bfarm/icd-10-gm", "J45.9", "Asthma bronchiale, nicht näher bezeichnet"},
		Influenza:    {"http://fhir.de/CodeSystem/bfarm/atc", "J07BB02", "Influenza, inaktiviert, Spaltvirus oder Oberflächenantigen"},
		Td:           {"http://fhir.de/CodeSystem/bfarm/atc", "J07AM51", "Tetanus-Toxoid, Kombinationen mit Diphtherie-Toxoid"},
		HepB:         {"http://fhir.de/CodeSystem/bfarm/atc", "J07BC01", "Hepatitis B, gereinigtes Antigen"},
	},
	"nl-core": {
		TB:           {"http://snomed.info/sct", "154283005", "Pulmonary tuberculosis"},
		Diabetes:     {"http://snomed.info/sct", "44054006", "Diabetes mellitus type 2"},
		HIV:          {"http://snomed.info/sct", "86406008", "Human immunodeficiency virus infection"},
		"mcv":        {"http://snomed.info/sct", "871831003", "Measles and mumps and rubella vaccine"},
		Hypertension: {"http://snomed.info/sct", "38341003", "Hypertensive disorder, systemic arterial"},
		Asthma:       {"http://snomed.info/sct", "195967001", "Asthma"},
		Influenza:    {"http://snomed.info/sct", "1181000221105", "Influenza virus antigen only vaccine product"},
		Td:           {"http://snomed.info/sct", "871826000", "Clostridium tetani and Corynebacterium diphtheriae antigens only vaccine product"},
		HepB:         {"http://snomed.info/sct", "871822003", "Hepatitis B virus antigen only vaccine product"},
	},
	"ips": {
		TB:           {"http://hl7.org/fhir/sid/icd-10", "A16.2", "Tuberculosis of lung"},
		Diabetes:     {"http://hl7.org/fhir/sid/icd-10", "E11.9", "Type 2 diabetes mellitus"},
		HIV:          {"http://hl7.org/fhir/sid/icd-10", "B20", "HIV disease"},
		"mcv":        {"http://www.whocc.no/atc", "J07BD52", "measles, combinations with mumps and rubella"},
		Hypertension: {"http://hl7.org/fhir/sid/icd-10", "I10", "Essential (primary) hypertension"},
		Asthma:       {"http://hl7.org/fhir/sid/icd-10", "J45.9", "Asthma, unspecified"},
		Influenza:    {"http://www.whocc.no/atc", "J07BB02", "influenza, inactivated, split virus or surface antigen"},
		Td:           {"http://www.whocc.no/atc", "J07AM51", "tetanus toxoid, combinations with diphtheria toxoid"},
		HepB:         {"http://www.whocc.no/atc", "J07BC01", "hepatitis B, purified antigen"},
	},
	"us-core": {
		TB:           {"http://snomed.info/sct", "56717001", "Tuberculosis"},
		Diabetes:     {"http://snomed.info/sct", "44054006", "Diabetes mellitus type 2"},
		HIV:          {"http://snomed.info/sct", "86406008", "Human immunodeficiency virus infection"},
		"mcv":        {"http://hl7.org/fhir/sid/cvx", "03", "MMR"},
		Hypertension: {"http://snomed.info/sct", "38341003", "Hypertensive disorder, systemic arterial"},
		Asthma:       {"http://snomed.info/sct", "195967001", "Asthma"},
		Influenza:    {"http://hl7.org/fhir/sid/cvx", "141", "Influenza, seasonal, injectable"},
		Td:           {"http://hl7.org/fhir/sid/cvx", "113", "Td (adult) preservative free"},
		HepB:         {"http://hl7.org/fhir/sid/cvx", "08", "Hep B, adolescent or pediatric"},
	},
}

// Profiles lists the profiles Write can write.
func Profiles() []string { return []string{"de-basis", "ips", "nl-core", "us-core"} }

func concept(c coding) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": c.system, "code": c.code, "display": c.display}}}
}

// Resources renders a person as national FHIR R4 resources (JSON, one
// resource each): the Patient first, then conditions, immunizations, vital
// signs and the screening answer.
func Resources(opts Options, p Person) ([][]byte, error) {
	cs, ok := codes[opts.Profile]
	if !ok {
		return nil, fmt.Errorf("population: no codes for profile %q", opts.Profile)
	}
	ref := map[string]any{"reference": "Patient/" + p.ID}
	pat := map[string]any{
		"resourceType": "Patient",
		"id":           p.ID,
		"identifier": []any{map[string]any{
			"system": "https://fhir.migrant-health.org/mhp/sid/synthetic/" + opts.Source,
			"value":  fmt.Sprintf("%06d", p.Index),
		}},
		"name":   []any{map[string]any{"family": "Synthetic", "given": []any{fmt.Sprintf("P%06d", p.Index)}}},
		"gender": p.Sex,
	}
	if p.BirthDate != "" {
		pat["birthDate"] = p.BirthDate
	} else {
		pat["_birthDate"] = map[string]any{"extension": []any{map[string]any{
			"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}}}
	}
	exts := []any{
		map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
			"valueAddress": map[string]any{"country": p.BirthCountry}},
		map[string]any{"url": "http://hl7.org/fhir/StructureDefinition/patient-citizenship",
			"extension": []any{map[string]any{"url": "code", "valueCodeableConcept": map[string]any{
				"coding": []any{map[string]any{"system": "urn:iso:std:iso:3166", "code": p.Citizenship}}}}}},
	}
	if p.Arrival != "" {
		exts = append(exts, map[string]any{"url": "https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-arrival",
			"extension": []any{
				map[string]any{"url": "date", "valueDate": p.Arrival},
				map[string]any{"url": "country", "valueCodeableConcept": map[string]any{
					"coding": []any{map[string]any{"system": "urn:iso:std:iso:3166", "code": opts.Country}}}},
			}})
	}
	pat["extension"] = exts
	out := make([][]byte, 0, 2+len(p.Conditions)+len(p.Vaccinations)+len(p.Vaccines)+3*len(p.Visits))
	add := func(v map[string]any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		out = append(out, b)
		return nil
	}
	if err := add(pat); err != nil {
		return nil, err
	}
	for i, c := range p.Conditions {
		cond := map[string]any{
			"resourceType": "Condition",
			"id":           fmt.Sprintf("%s-c%d", p.ID, i),
			"clinicalStatus": map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": c.Status}}},
			"verificationStatus": map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed"}}},
			"code":          concept(cs[c.Kind]),
			"subject":       ref,
			"onsetDateTime": c.Onset,
		}
		if c.Abatement != "" {
			cond["abatementDateTime"] = c.Abatement
		}
		if err := add(cond); err != nil {
			return nil, err
		}
	}
	for i, v := range p.Vaccinations {
		imm := map[string]any{
			"resourceType":       "Immunization",
			"id":                 fmt.Sprintf("%s-i%d", p.ID, i),
			"status":             v.Status,
			"vaccineCode":        concept(cs["mcv"]),
			"patient":            ref,
			"occurrenceDateTime": v.Date,
		}
		if err := add(imm); err != nil {
			return nil, err
		}
	}
	for i, v := range p.Vaccines {
		imm := map[string]any{
			"resourceType":       "Immunization",
			"id":                 fmt.Sprintf("%s-i%d", p.ID, len(p.Vaccinations)+i),
			"status":             "completed",
			"vaccineCode":        concept(cs[v.Kind]),
			"patient":            ref,
			"occurrenceDateTime": v.Date,
		}
		if err := add(imm); err != nil {
			return nil, err
		}
	}
	for i, v := range p.Visits {
		for _, vs := range []struct {
			suffix, loinc, display, unit, ucum string
			value                              any
		}{
			{"w", "29463-7", "Body weight", "kg", "kg", v.WeightKg},
			{"h", "8302-2", "Body height", "cm", "cm", v.HeightCm},
			{"p", "8867-4", "Heart rate", "beats/minute", "/min", v.HeartRate},
		} {
			obs := map[string]any{
				"resourceType": "Observation",
				"id":           fmt.Sprintf("%s-v%d%s", p.ID, i, vs.suffix),
				"status":       "final",
				"category": []any{map[string]any{"coding": []any{map[string]any{
					"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}}}},
				"code":              concept(coding{"http://loinc.org", vs.loinc, vs.display}),
				"subject":           ref,
				"effectiveDateTime": v.Date,
				"valueQuantity":     map[string]any{"value": vs.value, "unit": vs.unit, "system": "http://unitsofmeasure.org", "code": vs.ucum},
			}
			if err := add(obs); err != nil {
				return nil, err
			}
		}
	}
	if p.Screening != "" {
		answer := map[string]coding{
			"yes":      {"http://loinc.org", "LA33-6", "Yes"},
			"no":       {"http://loinc.org", "LA32-8", "No"},
			"declined": {"http://loinc.org", "LA30122-8", "I choose not to answer this question"},
		}[p.Screening]
		obs := map[string]any{
			"resourceType": "Observation",
			"id":           p.ID + "-s",
			"status":       "final",
			"category": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "social-history"}}}},
			"code":                 concept(coding{"http://loinc.org", "93027-1", "Are you a refugee?"}),
			"subject":              ref,
			"effectiveDateTime":    p.Arrival + "-15",
			"valueCodeableConcept": concept(answer),
		}
		if err := add(obs); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NDJSON renders a whole population, one resource a line.
func NDJSON(opts Options) ([]byte, error) {
	var out []byte
	for i := 0; i < opts.Patients; i++ {
		rs, err := Resources(opts, Generate(opts, i))
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			out = append(out, r...)
			out = append(out, '\n')
		}
	}
	return out, nil
}
