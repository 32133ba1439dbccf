package mappings

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

// Identifier registry actions, as IdentifierSystem.Action reports them.
const (
	// IdentifierKeep: the identifier stays in the MHP Patient.
	IdentifierKeep = idKeep
	// IdentifierDrop: the mapping drops it (not needed across borders).
	IdentifierDrop = idDrop
	// IdentifierFirewall: status-revealing, moved to the restricted
	// migration-context.
	IdentifierFirewall = idFirewall
)

// How far an identifier system may be used to find the same person in
// several sources (IdentifierSystem.Scope).
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

// IdentifierSystem is one entry of the identifier registry: what the
// mapping does with an identifier system (common/naming-systems.yaml, plus
// any entries a national profile adds) and how far it may be used to find
// one person in several sources. A deployment adds entries in its
// configuration (federation.identifiers), which fill the fields with YAML
// names; Kind and Action come from the mapping only.
type IdentifierSystem struct {
	// ID names the entry (passport, nl-bsn, unhcr-case).
	ID string `yaml:"id"`
	// Systems are the URIs of the system, preferred first: the OID and URL
	// forms of one system are one entry, and a source is asked with every
	// form.
	Systems []string `yaml:"systems"`
	// Prefix matches every system starting with it; the system found is
	// used as it is (http://hl7.org/fhir/sid/passport- for every issuing
	// country).
	Prefix string `yaml:"prefix"`
	// Types are identifier type codings ("system|code") that classify an
	// identifier whatever its system.
	Types []string `yaml:"types"`
	// Country is the ISO 3166-1 alpha-2 country that issues it. Empty for
	// identifiers of any country; a domestic one is then taken to belong to
	// the country of the record (or of the requester, for an identifier
	// the requester gives).
	Country string `yaml:"country"`
	// Scope is cross-border, domestic or none (ScopeCrossBorder,
	// ScopeDomestic, ScopeNone).
	Scope string `yaml:"scope"`
	// Partners are countries, besides Country, whose sources may be asked
	// with a domestic identifier (an agreement lets a partner use it).
	Partners []string `yaml:"partners"`
	// Kind is passport, national-health-id, national-id, local,
	// status-revealing, ... (the mapping's entries only).
	Kind string `yaml:"-"`
	// Action is IdentifierKeep, IdentifierDrop or IdentifierFirewall (the
	// mapping's entries only).
	Action string `yaml:"-"`
}

// defaultScope is the scope of a mapping entry that names none:
// status-revealing identifiers and those the mapping drops are never used,
// passports cross borders, the others stay in their country.
func defaultScope(kind, action string) string {
	switch {
	case action == idFirewall || action == idDrop || kind == "status-revealing":
		return ScopeNone
	case kind == "passport":
		return ScopeCrossBorder
	}
	return ScopeDomestic
}

// IdentifierSystems returns the identifier registry every profile of the
// engine classifies Patient.identifier with, ordered by id, each entry with
// its scope. An entry that a national profile adds appears once, as the
// first profile (by id) has it.
func (e *Engine) IdentifierSystems() []IdentifierSystem {
	byID := map[string]*IdentifierSystem{}
	for _, name := range e.Profiles() {
		reg := e.plans[name].reg
		if reg == nil {
			continue
		}
		for _, c := range reg.classes() {
			if _, ok := byID[c.ID]; !ok {
				byID[c.ID] = &c
			}
		}
	}
	out := make([]IdentifierSystem, 0, len(byID))
	for _, s := range byID {
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IdentifierRegistry returns the engine's registry (IdentifierSystems)
// with extra applied: an extra entry replaces the entry of the same id,
// the others are added.
func (e *Engine) IdentifierRegistry(extra ...IdentifierSystem) (*IdentifierRegistry, error) {
	return NewIdentifierRegistry(WithIdentifierSystems(e.IdentifierSystems(), extra...))
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

// IdentifierRegistry classifies identifiers for identity resolution and
// for the Patient merge of a summary: which may find a person in which
// sources, and which may cross a border. Resolution is by exact match on
// system and value only: nothing probabilistic. It classifies with the
// same rules as the mapping (types that forbid use win over systems; then
// exact systems, prefixes and the other types). It is immutable and safe
// for concurrent use.
type IdentifierRegistry struct {
	entries []IdentifierSystem
	reg     *registry
}

// NewIdentifierRegistry validates the entries and builds a registry. Every
// problem is reported, each naming the entry; errors wrap ErrRegistry.
func NewIdentifierRegistry(systems []IdentifierSystem) (*IdentifierRegistry, error) {
	r := &IdentifierRegistry{reg: newRegistry()}
	var errs []error
	fail := func(id, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: identifier %q: %s", ErrRegistry, id, fmt.Sprintf(format, args...)))
	}
	ids := map[string]bool{}
	for i, s := range systems {
		s.Systems, s.Types, s.Partners = slices.Clone(s.Systems), slices.Clone(s.Types), slices.Clone(s.Partners)
		r.entries = append(r.entries, s)
		if s.ID == "" {
			fail("", "entry %d has no id", i)
			continue
		}
		if ids[s.ID] {
			fail(s.ID, "listed twice")
		}
		ids[s.ID] = true
		switch s.Scope {
		case ScopeCrossBorder, ScopeDomestic, ScopeNone:
		default:
			fail(s.ID, "scope must be %s, %s or %s, not %q", ScopeCrossBorder, ScopeDomestic, ScopeNone, s.Scope)
		}
		if len(s.Systems) == 0 && s.Prefix == "" && len(s.Types) == 0 {
			fail(s.ID, "give systems, a prefix or types")
		}
		for _, c := range append([]string{s.Country}, s.Partners...) {
			if c == "" {
				continue
			}
			if a2, ok := conformance.CountryAlpha2(c); !ok || a2 != c {
				fail(s.ID, "%q is not an ISO 3166-1 alpha-2 code", c)
			}
		}
		c := &idClass{id: s.ID, country: s.Country, kind: s.Kind, action: s.Action, scope: s.Scope, partners: s.Partners}
		for _, sys := range s.Systems {
			if sys == "" || strings.ContainsAny(sys, "|,") {
				fail(s.ID, "system %q is empty or holds '|' or ','", sys)
				continue
			}
			if prev, dup := r.reg.bySystem[sys]; dup {
				fail(s.ID, "system %s is already claimed by %s", sys, prev.id)
				continue
			}
			if c.preferred == "" {
				c.preferred = sys
			}
			c.systems = append(c.systems, sys)
			r.reg.bySystem[sys] = c
		}
		if s.Prefix != "" {
			if p := r.reg.overlapping(s.Prefix); p != nil {
				fail(s.ID, "prefix overlaps that of %s", p.id)
			}
			pc := *c
			pc.preferred = s.Prefix
			r.reg.prefixes = append(r.reg.prefixes, &pc)
		}
		for _, t := range s.Types {
			sys, code, ok := strings.Cut(t, "|")
			if !ok || sys == "" || code == "" {
				fail(s.ID, "type %q is not system|code", t)
				continue
			}
			if prev := r.reg.typeClaim(t); prev != nil {
				fail(s.ID, "type %s is already claimed by %s", t, prev.id)
				continue
			}
			// Types that forbid use win over systems (a refugee identifier
			// type reveals status in any system).
			if s.Scope == ScopeNone {
				r.reg.firewallType[t] = c
			} else {
				r.reg.byType[t] = c
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// Systems returns the registry's entries, in the order given.
func (r *IdentifierRegistry) Systems() []IdentifierSystem {
	out := make([]IdentifierSystem, len(r.entries))
	for i, e := range r.entries {
		e.Systems, e.Types, e.Partners = slices.Clone(e.Systems), slices.Clone(e.Types), slices.Clone(e.Partners)
		out[i] = e
	}
	return out
}

// IdentifierMatch is one identifier that may find a person: the forms to
// ask a source with and the countries whose sources may be asked.
type IdentifierMatch struct {
	// Key is the identifier as one system names it: preferred system and
	// value, so that OID and URL forms are one identifier.
	Key string
	// Forms are "system|value", escaped for a FHIR token search.
	Forms []string
	// Countries limits the sources that may be asked; nil means any.
	Countries []string
	// Kind names the registry entry (passport, nl-bsn), or "local" for a
	// system nobody registered: how a record was linked, never the value.
	Kind string
}

// UsableIn reports whether a source of that country may be asked with m.
func (m IdentifierMatch) UsableIn(country string) bool {
	return m.Countries == nil || slices.Contains(m.Countries, country)
}

// Match turns one identifier (types as "system|code") into an
// IdentifierMatch, or false when it may not be used to find a person. home
// is the country an identifier without an issuing country belongs to (the
// record's or the requester's); "" forbids such identifiers. A system
// nobody registered is known only where it is used: it is domestic to home.
func (r *IdentifierRegistry) Match(system, value string, types []string, home string) (IdentifierMatch, bool) {
	if system == "" || value == "" {
		return IdentifierMatch{}, false
	}
	c := r.reg.classify(system, typeKeys(types))
	if c == nil {
		if home == "" {
			return IdentifierMatch{}, false
		}
		return IdentifierMatch{Key: system + "|" + value, Forms: []string{r4.TokenValue(system, value)}, Countries: []string{home}, Kind: "local"}, true
	}
	if c.scope == ScopeNone {
		return IdentifierMatch{}, false
	}
	m := IdentifierMatch{Key: system + "|" + value, Kind: c.id}
	if _, exact := r.reg.bySystem[system]; exact {
		m.Key = c.preferred + "|" + value
		for _, s := range c.systems {
			m.Forms = append(m.Forms, r4.TokenValue(s, value))
		}
	} else {
		m.Forms = []string{r4.TokenValue(system, value)}
	}
	if c.scope == ScopeDomestic {
		country := c.country
		if country == "" {
			country = home
		}
		if country == "" {
			return IdentifierMatch{}, false
		}
		m.Countries = append([]string{country}, c.partners...)
	}
	return m, true
}

// Classify names one identifier for a summary's Patient merge: its key
// (the preferred system's form), whether it may be asked with in any
// country (and so may cross a border), and whether the registry lets it
// find a person at all.
func (r *IdentifierRegistry) Classify(system, value string, types []string, country string) (key string, crosses, ok bool) {
	m, ok := r.Match(system, value, types, country)
	if !ok {
		return "", false, false
	}
	return m.Key, m.Countries == nil, true
}

// typeKeys splits "system|code" type codings.
func typeKeys(types []string) []codingKey {
	out := make([]codingKey, 0, len(types))
	for _, t := range types {
		sys, code, _ := strings.Cut(t, "|")
		out = append(out, codingKey{sys, code})
	}
	return out
}
