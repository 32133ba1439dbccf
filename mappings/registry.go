package mappings

import (
	"fmt"

	"github.com/migrant-health/mhg/conformance"
	"slices"
	"sort"
	"strings"
)

// Identifier actions.
const (
	idKeep     = "keep"
	idDrop     = "drop"
	idFirewall = "firewall"
)

// idClass is a compiled registry entry: what an identifier system (or type)
// is, and what the mapping does with it.
type idClass struct {
	id, country, kind, action, reason string
	// scope and partners say how far it may find a person
	// (IdentifierSystem.Scope, Partners).
	scope    string
	partners []string
	// systems are every form of the system, preferred first.
	systems []string
	// status is an mhp-migration-status code the identifier reveals.
	status string
	// preferred is the system written to the output: OID and URL forms of
	// one system become this one.
	preferred string
	// typ is the Identifier.type coding added when the input has none.
	typ  *codingSpec
	file string
	pos
}

// registry classifies identifiers, for the mapping (what to do with an
// identifier) and for identity resolution (IdentifierRegistry). Type rules
// that firewall (or forbid use) win over system rules (a refugee
// identifier type reveals status whatever its system); then exact systems;
// then system prefixes; then other types.
type registry struct {
	bySystem     map[string]*idClass
	prefixes     []*idClass
	byType       map[string]*idClass
	firewallType map[string]*idClass
}

func newRegistry() *registry {
	return &registry{bySystem: map[string]*idClass{}, byType: map[string]*idClass{}, firewallType: map[string]*idClass{}}
}

func typeKey(system, code string) string { return system + "|" + code }

// clone copies the registry so that a profile can add entries without
// touching the shared one.
func (r *registry) clone() *registry {
	c := newRegistry()
	for k, v := range r.bySystem {
		c.bySystem[k] = v
	}
	c.prefixes = append(c.prefixes, r.prefixes...)
	for k, v := range r.byType {
		c.byType[k] = v
	}
	for k, v := range r.firewallType {
		c.firewallType[k] = v
	}
	return c
}

var identifierKinds = map[string]bool{
	"national-health-id": true, "national-id": true, "passport": true, "local": true,
	"social-security": true, "driver-licence": true, "residence-permit": true,
	"status-revealing": true, "insurance": true, "other": true,
}

// add compiles and registers one entry. A system, prefix or type that two
// entries claim is a contradiction.
func (r *registry) add(file string, s *identifierSpec, statusCodes map[string]bool) error {
	if s.ID == "" {
		return s.at(file, "identifier entry without id")
	}
	if !identifierKinds[s.Kind] {
		return s.at(file, "identifier %s: unknown kind %q", s.ID, s.Kind)
	}
	switch s.Action {
	case idKeep, idDrop, idFirewall:
	default:
		return s.at(file, "identifier %s: action must be keep, drop or firewall, not %q", s.ID, s.Action)
	}
	if s.Status != "" && !statusCodes[s.Status] {
		return s.at(file, "identifier %s: status %q is not an mhp-migration-status code", s.ID, s.Status)
	}
	if s.Status != "" && s.Action != idFirewall {
		return s.at(file, "identifier %s: only a firewalled identifier can reveal a status", s.ID)
	}
	if len(s.Systems) == 0 && s.Prefix == "" && len(s.Types) == 0 {
		return s.at(file, "identifier %s: give systems, system-prefix or types", s.ID)
	}
	scope := s.Scope
	switch scope {
	case "":
		scope = defaultScope(s.Kind, s.Action)
	case ScopeCrossBorder, ScopeDomestic, ScopeNone:
	default:
		return s.at(file, "identifier %s: scope must be %s, %s or %s, not %q", s.ID, ScopeCrossBorder, ScopeDomestic, ScopeNone, s.Scope)
	}
	if s.Action != idKeep && scope != ScopeNone {
		return s.at(file, "identifier %s: an identifier the mapping does not keep cannot find a person (scope %s)", s.ID, scope)
	}
	if s.Action == idFirewall {
		// The profile checker flags an identifier in a Patient only when
		// mhp-pat-2 names it: a firewalled one it does not name could sit
		// in a Patient unnoticed.
		systems, codes, _ := conformance.StatusRevealing()
		for _, sys := range s.Systems {
			if !slices.Contains(systems, sys) {
				return s.at(file, "identifier %s is firewalled, but mhp-pat-2 in conformance/profiles/StructureDefinition-mhp-patient.json does not list its system %s", s.ID, sys)
			}
		}
		for _, t := range s.Types {
			if !slices.Contains(codes, t.Code) {
				return t.at(file, "identifier %s is firewalled, but mhp-pat-2 in conformance/profiles/StructureDefinition-mhp-patient.json does not list its type code %s", s.ID, t.Code)
			}
		}
	}
	c := &idClass{id: s.ID, country: s.Country, kind: s.Kind, action: s.Action, reason: s.Reason,
		scope: scope, partners: s.Partners, systems: s.Systems,
		status: s.Status, typ: s.Type, file: file, pos: s.pos}
	if len(s.Systems) > 0 {
		c.preferred = s.Systems[0]
	}
	for _, sys := range s.Systems {
		if prev, ok := r.bySystem[sys]; ok {
			return s.at(file, "system %s is already claimed by identifier %s (%s:%d): contradictory", sys, prev.id, prev.file, prev.Line)
		}
		r.bySystem[sys] = c
	}
	if s.Prefix != "" {
		if p := r.overlapping(s.Prefix); p != nil {
			return s.at(file, "system-prefix overlaps identifier %s (%s:%d): contradictory", p.id, p.file, p.Line)
		}
		pc := *c
		pc.preferred = s.Prefix
		r.prefixes = append(r.prefixes, &pc)
	}
	for _, t := range s.Types {
		if t.System == "" || t.Code == "" {
			return t.at(file, "identifier %s: a type needs system and code", s.ID)
		}
		k := typeKey(t.System, t.Code)
		m := r.byType
		if s.Action == idFirewall {
			m = r.firewallType
		}
		if prev := r.typeClaim(k); prev != nil {
			return t.at(file, "type %s#%s is already claimed by identifier %s (%s:%d): contradictory", t.System, t.Code, prev.id, prev.file, prev.Line)
		}
		m[k] = c
	}
	return nil
}

// overlapping returns the entry whose system prefix overlaps prefix, or
// nil.
func (r *registry) overlapping(prefix string) *idClass {
	for _, p := range r.prefixes {
		if strings.HasPrefix(prefix, p.preferred) || strings.HasPrefix(p.preferred, prefix) {
			return p
		}
	}
	return nil
}

// typeClaim returns the entry that claims a type ("system|code"), or nil.
func (r *registry) typeClaim(k string) *idClass {
	if c, ok := r.byType[k]; ok {
		return c
	}
	return r.firewallType[k]
}

// classes returns every entry as an IdentifierSystem, in no particular
// order.
func (r *registry) classes() []IdentifierSystem {
	byID := map[string]*IdentifierSystem{}
	entry := func(c *idClass) *IdentifierSystem {
		if s, ok := byID[c.id]; ok {
			return s
		}
		s := &IdentifierSystem{ID: c.id, Country: c.country, Kind: c.kind, Action: c.action, Scope: c.scope,
			Partners: slices.Clone(c.partners), Systems: slices.Clone(c.systems)}
		byID[c.id] = s
		return s
	}
	for _, c := range r.bySystem {
		entry(c)
	}
	for _, c := range r.prefixes {
		entry(c).Prefix = c.preferred
	}
	for _, m := range []map[string]*idClass{r.byType, r.firewallType} {
		for k, c := range m {
			s := entry(c)
			s.Types = append(s.Types, k)
		}
	}
	out := make([]IdentifierSystem, 0, len(byID))
	for _, s := range byID {
		sort.Strings(s.Types)
		out = append(out, *s)
	}
	return out
}

// classify finds the class of an identifier (system and type codings), or
// nil when the registry does not know it.
func (r *registry) classify(system string, types []codingKey) *idClass {
	for _, t := range types {
		if c, ok := r.firewallType[typeKey(t.system, t.code)]; ok {
			return c
		}
	}
	if c, ok := r.bySystem[system]; ok {
		return c
	}
	for _, p := range r.prefixes {
		if system != "" && strings.HasPrefix(system, p.preferred) {
			return p
		}
	}
	for _, t := range types {
		if c, ok := r.byType[typeKey(t.system, t.code)]; ok {
			return c
		}
	}
	return nil
}

type codingKey struct{ system, code string }

func (c codingKey) String() string { return fmt.Sprintf("%s#%s", c.system, c.code) }
