package mappings

import "regexp"

// FR Core writes the place of birth in its own extension,
// fr-core-patient-birth-place, as an Address whose district is the INSEE
// COG code of the commune of birth, or "99" and three digits for a birth
// abroad (the country's code); Address.country may be absent. The
// extension transform fr-birth-place writes it as the international
// patient-birthPlace, with the country the COG code says in
// Address.country, so that country normalisation (insee-country-to-iso3166)
// can add the ISO 3166-1 code. The district stays as it was.

var (
	// cogForeign is the COG code of a country (birth abroad).
	cogForeign = regexp.MustCompile(`^99[0-9]{3}$`)
	// cogCommune is the COG code of a French commune (Corsica: 2A, 2B;
	// overseas departments: 97x).
	cogCommune = regexp.MustCompile(`^([0-9]{2}|2A|2B)[0-9]{3}$`)
)

func frBirthPlace(tc *transformCtx, ext object) []any {
	addr := getObj(ext, "valueAddress")
	if addr == nil {
		tc.m.issue(sevWarning, codeNotSupported, tc.path, "place of birth without an address; dropped")
		return nil
	}
	if _, has := addr["country"]; !has {
		switch d := getStr(addr, "district"); {
		case cogForeign.MatchString(d):
			addr["country"] = d
		case cogCommune.MatchString(d):
			addr["country"] = "FR"
		default:
			tc.m.issue(sevInfo, codeInformation, tc.path, "place of birth has neither a country nor an INSEE COG code; passed on without a country")
		}
	}
	ext["url"] = extBirthPlace
	tc.m.walk(ext, tc.path)
	return []any{ext}
}

const extBirthPlace = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
