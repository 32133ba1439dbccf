package federate

import (
	"slices"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/mappings"
)

// identifierRegistry is what a Mapper may offer: the mapping engine's
// identifier registry (mappings.Engine has it).
type identifierRegistry interface {
	IdentifierRegistry(extra ...mappings.IdentifierSystem) (*mappings.IdentifierRegistry, error)
}

var _ identifierRegistry = (*mappings.Engine)(nil)

// passportPrefix is the system prefix of passport numbers of every
// issuing country (http://hl7.org/fhir/sid/passport-UKR, ...).
const passportPrefix = "http://hl7.org/fhir/sid/passport-"

// defaultIdentity is the registry a Linker resolves with when given none:
// the mapper's (passports cross borders, national and local identifiers
// stay domestic, status-revealing ones are never used), or passports alone
// for a mapper without one.
func defaultIdentity(m Mapper) (*mappings.IdentifierRegistry, error) {
	if reg, ok := m.(identifierRegistry); ok {
		return reg.IdentifierRegistry()
	}
	return mappings.NewIdentifierRegistry([]mappings.IdentifierSystem{
		{ID: "passport", Prefix: passportPrefix, Scope: mappings.ScopeCrossBorder}})
}

// linkID is one identifier that may find the person.
type linkID = mappings.IdentifierMatch

// sortedForms joins the forms of several identifiers into one search value
// (alternatives, FHIR "or"), in a stable order for the cache key.
func sortedForms(ids []linkID) string {
	var forms []string
	for _, id := range ids {
		forms = append(forms, id.Forms...)
	}
	sort.Strings(forms)
	return strings.Join(slices.Compact(forms), ",")
}
