package federate

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

// How far an identifier system may be used to find a person.
const (
	// ScopeCrossBorder: in every source the query phase permits
	// (passports, UNHCR or IOM case numbers).
	ScopeCrossBorder = "cross-border"
	// ScopeDomestic: only in sources of the issuing country and of the
	// partner countries an agreement lets use it.
	ScopeDomestic = "domestic"
	// ScopeNone: never used to find a person (status-revealing identifiers,
	// identifiers the mapping drops).
	ScopeNone = "none"
)

// ErrRegistry is wrapped by every error about an identifier registry that
// cannot be built.
var ErrRegistry = errors.New("invalid identifier registry")

// IdentifierSystem says how one identifier system may be used to find the
// same person in several sources. Resolution is by exact match on system
// and value only: nothing probabilistic.
type IdentifierSystem struct {
	// ID names the entry (passport, nl-bsn, unhcr-case).
	ID string
	// Systems are the URIs of the system, preferred first: the OID and URL
	// forms of one system are one entry, and a source is asked with every
	// form.
	Systems []string
	// Prefix matches every system starting with it; the system found is
	// used as it is (http://hl7.org/fhir/sid/passport- for every issuing
	// country).
	Prefix string
	// Types are identifier type codings ("system|code") that classify an
	// identifier whatever its system.
	Types []string
	// Country is the ISO 3166-1 alpha-2 country that issues it. Empty for
	// identifiers of any country; a domestic one is then taken to belong to
	// the country of the record (or of the requester, for an identifier
	// the requester gives).
	Country string
	// Scope is ScopeCrossBorder, ScopeDomestic or ScopeNone.
	Scope string
	// Partners are countries, besides Country, whose sources may be asked
	// with a domestic identifier (an agreement lets a partner use it).
	Partners []string
}

// IdentityRegistry classifies identifier systems for identity resolution.
// It is immutable and safe for concurrent use.
type IdentityRegistry struct {
	entries  []IdentifierSystem
	bySystem map[string]*IdentifierSystem
	prefixes []*IdentifierSystem
	// noneTypes are types that forbid use whatever the system (a refugee
	// identifier type reveals status in any system); byType the others.
	noneTypes map[string]*IdentifierSystem
	byType    map[string]*IdentifierSystem
}

// NewIdentityRegistry validates the entries and builds a registry. Every
// problem is reported, each naming the entry; errors wrap ErrRegistry.
func NewIdentityRegistry(systems []IdentifierSystem) (*IdentityRegistry, error) {
	r := &IdentityRegistry{bySystem: map[string]*IdentifierSystem{}, noneTypes: map[string]*IdentifierSystem{},
		byType: map[string]*IdentifierSystem{}}
	var errs []error
	fail := func(id, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: identifier %q: %s", ErrRegistry, id, fmt.Sprintf(format, args...)))
	}
	ids := map[string]bool{}
	r.entries = make([]IdentifierSystem, len(systems))
	for i, s := range systems {
		s.Systems = slices.Clone(s.Systems)
		s.Types = slices.Clone(s.Types)
		s.Partners = slices.Clone(s.Partners)
		r.entries[i] = s
		e := &r.entries[i]
		if e.ID == "" {
			fail("", "entry %d has no id", i)
			continue
		}
		if ids[e.ID] {
			fail(e.ID, "listed twice")
		}
		ids[e.ID] = true
		switch e.Scope {
		case ScopeCrossBorder, ScopeDomestic, ScopeNone:
		default:
			fail(e.ID, "scope must be %s, %s or %s, not %q", ScopeCrossBorder, ScopeDomestic, ScopeNone, e.Scope)
		}
		if len(e.Systems) == 0 && e.Prefix == "" && len(e.Types) == 0 {
			fail(e.ID, "give systems, a prefix or types")
		}
		for _, c := range append([]string{e.Country}, e.Partners...) {
			if c == "" {
				continue
			}
			if a2, ok := conformance.CountryAlpha2(c); !ok || a2 != c {
				fail(e.ID, "%q is not an ISO 3166-1 alpha-2 code", c)
			}
		}
		for _, sys := range e.Systems {
			if sys == "" || strings.ContainsAny(sys, "|,") {
				fail(e.ID, "system %q is empty or holds '|' or ','", sys)
				continue
			}
			if prev, dup := r.bySystem[sys]; dup {
				fail(e.ID, "system %s is already claimed by %s", sys, prev.ID)
				continue
			}
			r.bySystem[sys] = e
		}
		if e.Prefix != "" {
			for _, p := range r.prefixes {
				if strings.HasPrefix(e.Prefix, p.Prefix) || strings.HasPrefix(p.Prefix, e.Prefix) {
					fail(e.ID, "prefix overlaps that of %s", p.ID)
				}
			}
			r.prefixes = append(r.prefixes, e)
		}
		for _, t := range e.Types {
			sys, code, ok := strings.Cut(t, "|")
			if !ok || sys == "" || code == "" {
				fail(e.ID, "type %q is not system|code", t)
				continue
			}
			if prev, dup := r.byType[t]; dup {
				fail(e.ID, "type %s is already claimed by %s", t, prev.ID)
				continue
			}
			if prev, dup := r.noneTypes[t]; dup {
				fail(e.ID, "type %s is already claimed by %s", t, prev.ID)
				continue
			}
			if e.Scope == ScopeNone {
				r.noneTypes[t] = e
			} else {
				r.byType[t] = e
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Systems returns the registry's entries, in the order given.
func (r *IdentityRegistry) Systems() []IdentifierSystem {
	out := make([]IdentifierSystem, len(r.entries))
	for i, e := range r.entries {
		e.Systems, e.Types, e.Partners = slices.Clone(e.Systems), slices.Clone(e.Types), slices.Clone(e.Partners)
		out[i] = e
	}
	return out
}

// identifierRegistry is what a Mapper may offer: the mapping engine's
// identifier registry (mappings.Engine has it).
type identifierRegistry interface {
	IdentifierSystems() []mappings.IdentifierSystem
}

var _ identifierRegistry = (*mappings.Engine)(nil)

// passportPrefix is the system prefix of passport numbers of every
// issuing country (http://hl7.org/fhir/sid/passport-UKR, ...).
const passportPrefix = "http://hl7.org/fhir/sid/passport-"

// DefaultIdentifierSystems derives the identity registry from the mapping
// engine's identifier registry (mappings/common/naming-systems.yaml):
// passports cross borders; national, insurance and local identifiers are
// domestic (usable in sources of their own country only); status-revealing
// identifiers and those the mapping drops are never used. A mapper without
// a registry gives the passport prefix alone. Deployments add or replace
// entries with WithIdentifierSystems (UNHCR or IOM case numbers, a national
// id a bilateral agreement lets the partner use).
func DefaultIdentifierSystems(m Mapper) []IdentifierSystem {
	reg, ok := m.(identifierRegistry)
	if !ok {
		return []IdentifierSystem{{ID: "passport", Prefix: passportPrefix, Scope: ScopeCrossBorder}}
	}
	var out []IdentifierSystem
	for _, s := range reg.IdentifierSystems() {
		e := IdentifierSystem{ID: s.ID, Systems: s.Systems, Prefix: s.Prefix, Types: s.Types, Country: s.Country, Scope: ScopeDomestic}
		switch {
		case s.Action == mappings.IdentifierFirewall || s.Action == mappings.IdentifierDrop || s.Kind == "status-revealing":
			e.Scope = ScopeNone
		case s.Kind == "passport":
			e.Scope = ScopeCrossBorder
		}
		out = append(out, e)
	}
	return out
}

// WithIdentifierSystems returns base with extra applied: an extra entry
// replaces the base entry of the same id, the others are appended.
func WithIdentifierSystems(base []IdentifierSystem, extra ...IdentifierSystem) []IdentifierSystem {
	out := slices.Clone(base)
	for _, e := range extra {
		if i := slices.IndexFunc(out, func(b IdentifierSystem) bool { return b.ID == e.ID }); i >= 0 {
			out[i] = e
		} else {
			out = append(out, e)
		}
	}
	return out
}

// classify finds the entry of an identifier, or nil. Types that forbid use
// win over systems; then exact systems, prefixes and the other types, as
// the mapping classifies them.
func (r *IdentityRegistry) classify(system string, types []string) *IdentifierSystem {
	for _, t := range types {
		if e, ok := r.noneTypes[t]; ok {
			return e
		}
	}
	if e, ok := r.bySystem[system]; ok {
		return e
	}
	for _, e := range r.prefixes {
		if system != "" && strings.HasPrefix(system, e.Prefix) {
			return e
		}
	}
	for _, t := range types {
		if e, ok := r.byType[t]; ok {
			return e
		}
	}
	return nil
}

// linkID is one identifier that may find the person: the forms to ask a
// source with and the countries whose sources may be asked (nil: any).
type linkID struct {
	// key is the identifier as one system names it: preferred system and
	// value, so that OID and URL forms are one identifier.
	key string
	// forms are "system|value", escaped for a FHIR token search.
	forms []string
	// countries limits the sources that may be asked; nil means any.
	countries []string
	// kind names the registry entry (passport, nl-bsn), or "local" for a
	// system nobody registered; never the value.
	kind string
}

// usableIn reports whether a source of that country may be asked with id.
func (id linkID) usableIn(country string) bool {
	return id.countries == nil || slices.Contains(id.countries, country)
}

// linkIdentifier turns one identifier into a linkID, or false when it may
// not be used. home is the country an identifier without an issuing
// country belongs to (the record's or the requester's); "" forbids such
// identifiers.
func (r *IdentityRegistry) linkIdentifier(system, value string, types []string, home string) (linkID, bool) {
	if system == "" || value == "" {
		return linkID{}, false
	}
	e := r.classify(system, types)
	if e == nil {
		// A system nobody registered is known only where it is used: it is
		// treated as a domestic identifier of home.
		if home == "" {
			return linkID{}, false
		}
		return linkID{key: system + "|" + value, forms: []string{r4.TokenValue(system, value)}, countries: []string{home}, kind: "local"}, true
	}
	if e.Scope == ScopeNone {
		return linkID{}, false
	}
	id := linkID{key: system + "|" + value, kind: e.ID}
	if _, exact := r.bySystem[system]; exact {
		id.key = e.Systems[0] + "|" + value
		for _, s := range e.Systems {
			id.forms = append(id.forms, r4.TokenValue(s, value))
		}
	} else {
		id.forms = []string{r4.TokenValue(system, value)}
	}
	if e.Scope == ScopeDomestic {
		country := e.Country
		if country == "" {
			country = home
		}
		if country == "" {
			return linkID{}, false
		}
		id.countries = append([]string{country}, e.Partners...)
	}
	return id, true
}

// sortedForms joins the forms of several identifiers into one search value
// (alternatives, FHIR "or"), in a stable order for the cache key.
func sortedForms(ids []linkID) string {
	var forms []string
	for _, id := range ids {
		forms = append(forms, id.forms...)
	}
	sort.Strings(forms)
	return strings.Join(slices.Compact(forms), ",")
}
