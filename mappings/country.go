package mappings

import (
	"github.com/migrant-health/mhg/conformance"
)

// countries normalises country codes to ISO 3166-1 alpha-2 at the paths the
// shared spec lists, keeping what the source said: an Address keeps its
// country text and gains an iso21090-SC-coding with the alpha-2 code; a
// CodeableConcept (citizenship, nationality) gains an alpha-2 coding
// beside the national one.
func (m *mapper) countries(root object, typ string) {
	for _, p := range m.p.addresses[typ] {
		for _, a := range p.objects(root) {
			m.address(a, p.text)
		}
	}
	for _, p := range m.p.concepts[typ] {
		for _, cc := range p.objects(root) {
			m.countryConcept(cc, p.text)
		}
	}
}

// alpha2 translates one coded country to alpha-2: ISO alpha-2 and alpha-3
// directly, national code tables (GBA, BFS, INSEE) through the profile's
// country maps.
func (m *mapper) alpha2(system, code string) (a2 string, national bool) {
	if system == sysISO3166 || system == "" {
		if a, ok := conformance.CountryAlpha2(code); ok {
			return a, false
		}
	}
	for _, cm := range m.p.countryMaps {
		trs, _ := cm.lookup(system, code)
		if system == "" {
			// A bare code (Address.country as text) is tried against every
			// table the profile declares, so that a BFS or INSEE number
			// written as the country string is understood.
			for src := range cm.groups {
				more, _ := cm.lookup(src, code)
				trs = append(trs, more...)
			}
		}
		for _, tr := range trs {
			if tr.none() || tr.system != sysISO3166 {
				continue
			}
			if a, ok := conformance.CountryAlpha2(tr.code); ok && a == tr.code {
				return a, true
			}
		}
	}
	return "", false
}

func countryName(a2 string) string {
	loadVocab()
	return countryNames[a2]
}

func (m *mapper) address(addr object, path string) {
	text, hasText := addr["country"].(string)
	under := getObj(addr, "_country")
	var sc object
	var candidates []codingKey
	for _, e := range objects(under["extension"]) {
		if getStr(e, "url") == extSCCoding {
			sc = e
		}
		if vc := getObj(e, "valueCoding"); vc != nil {
			candidates = append(candidates, codingKey{getStr(vc, "system"), getStr(vc, "code")})
		}
		for _, c := range objects(getObj(e, "valueCodeableConcept")["coding"]) {
			candidates = append(candidates, codingKey{getStr(c, "system"), getStr(c, "code")})
		}
	}
	if hasText {
		candidates = append(candidates, codingKey{"", text})
	}
	if len(candidates) == 0 {
		return
	}
	a2 := ""
	for _, c := range candidates {
		if a, _ := m.alpha2(c.system, c.code); a != "" {
			a2 = a
			break
		}
	}
	if a2 == "" {
		m.issue(sevWarning, codeNotFound, path+".country", "country could not be normalised to ISO 3166-1 alpha-2; kept as the source wrote it")
		return
	}
	if sc == nil && text == a2 {
		return
	}
	want := coding(sysISO3166, a2, countryName(a2))
	if sc != nil {
		vc := getObj(sc, "valueCoding")
		if getStr(vc, "system") == sysISO3166 && getStr(vc, "code") == a2 {
			return
		}
		if getStr(vc, "system") != sysISO3166 {
			m.issue(sevInfo, codeInformation, path+".country", "a national country code in iso21090-SC-coding was replaced by ISO 3166-1 alpha-2")
		}
		sc["valueCoding"] = want
		return
	}
	if under == nil {
		under = object{}
		addr["_country"] = under
	}
	under["extension"] = append(getArr(under, "extension"), object{"url": extSCCoding, "valueCoding": want})
}

func (m *mapper) countryConcept(cc object, path string) {
	codings := objects(cc["coding"])
	a2 := ""
	for _, c := range codings {
		sys, code := getStr(c, "system"), getStr(c, "code")
		if sys == sysISO3166 && len(code) == 2 {
			if _, ok := conformance.CountryAlpha2(code); ok {
				return // already there
			}
		}
		if a, _ := m.alpha2(sys, code); a != "" && a2 == "" {
			a2 = a
		}
	}
	if a2 == "" {
		if len(codings) > 0 && !m.knownNoCountry(codings) {
			m.issue(sevWarning, codeNotFound, path, "country could not be normalised to ISO 3166-1 alpha-2; only the national coding is kept")
		}
		return
	}
	cc["coding"] = append(getArr(cc, "coding"), coding(sysISO3166, a2, countryName(a2)))
}

// knownNoCountry reports whether a country map says the code has no
// country at all (GBA "stateless"): that is information, not a gap.
func (m *mapper) knownNoCountry(codings []object) bool {
	for _, c := range codings {
		for _, cm := range m.p.countryMaps {
			trs, _ := cm.lookup(getStr(c, "system"), getStr(c, "code"))
			for _, tr := range trs {
				if tr.none() {
					return true
				}
			}
		}
	}
	return false
}
