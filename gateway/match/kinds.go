package match

import (
	"slices"
	"strings"
)

// Trait kinds: what a policy is told about a search (which kinds were
// given), never the values. They name the FHIR Patient elements they come
// from.
const (
	KindFamily      = "family"
	KindGiven       = "given"
	KindBirthDate   = "birthDate"
	KindGender      = "gender"
	KindBirthPlace  = "birthPlace"
	KindCitizenship = "citizenship"
	KindIdentifier  = "identifier"
)

// Kinds lists every trait kind, in the order Traits.Kinds returns them.
var Kinds = []string{KindBirthDate, KindBirthPlace, KindCitizenship, KindFamily, KindGender, KindGiven, KindIdentifier}

// Kinds returns the kinds of trait t holds, sorted.
func (t Traits) Kinds() []string {
	has := map[string]bool{}
	for _, n := range t.Names {
		if strings.TrimSpace(n.Family) != "" {
			has[KindFamily] = true
		}
		for _, g := range n.Given {
			if strings.TrimSpace(g) != "" {
				has[KindGiven] = true
			}
		}
	}
	has[KindBirthDate] = !t.BirthDate.IsZero()
	has[KindGender] = t.Sex != ""
	has[KindBirthPlace] = t.BirthPlace != ""
	has[KindCitizenship] = len(t.Citizenship) > 0
	has[KindIdentifier] = len(t.Identifiers) > 0
	out := []string{}
	for _, k := range Kinds {
		if has[k] {
			out = append(out, k)
		}
	}
	return out
}

// Only returns t with the traits of the kinds listed and nothing else:
// what may be sent to a source whose rules allow those kinds.
func (t Traits) Only(kinds []string) Traits {
	keep := func(k string) bool { return slices.Contains(kinds, k) }
	out := Traits{Country: t.Country}
	for _, n := range t.Names {
		var m Name
		if keep(KindFamily) {
			m.Family = n.Family
		}
		if keep(KindGiven) {
			m.Given = slices.Clone(n.Given)
		}
		if m.Family != "" || len(m.Given) > 0 {
			out.Names = append(out.Names, m)
		}
	}
	if keep(KindBirthDate) {
		out.BirthDate = t.BirthDate
	}
	if keep(KindGender) {
		out.Sex = t.Sex
	}
	if keep(KindBirthPlace) {
		out.BirthPlace = t.BirthPlace
	}
	if keep(KindCitizenship) {
		out.Citizenship = slices.Clone(t.Citizenship)
	}
	if keep(KindIdentifier) {
		out.Identifiers = slices.Clone(t.Identifiers)
	}
	return out
}
