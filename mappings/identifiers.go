package mappings

import (
	"slices"
	"sort"
	"strings"
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

// IdentifierSystem is one entry of the identifier registry
// (common/naming-systems.yaml, plus any entries a national profile adds),
// as other packages may read it: the gateway's identity resolution builds
// its own registry of which identifiers may find a person across borders
// from these entries.
type IdentifierSystem struct {
	// ID is the entry id (passport, nl-bsn, ...).
	ID string
	// Country is the ISO 3166-1 alpha-2 country that issues it; empty for
	// identifiers of any country (passports, record numbers).
	Country string
	// Kind is passport, national-health-id, national-id, local,
	// status-revealing, ...
	Kind string
	// Action is IdentifierKeep, IdentifierDrop or IdentifierFirewall.
	Action string
	// Systems are the URIs of the system, the form the mapping writes out
	// first: the OID and URL forms of one system are one entry.
	Systems []string
	// Prefix matches every system that starts with it
	// (http://hl7.org/fhir/sid/passport- for every issuing country).
	Prefix string
	// Types are the identifier type codings ("system|code") that classify
	// an identifier whatever its system.
	Types []string
}

// IdentifierSystems returns the identifier registry every profile of the
// engine classifies Patient.identifier with, ordered by id. An entry that a
// national profile adds appears once, as the first profile (by id) has it.
func (e *Engine) IdentifierSystems() []IdentifierSystem {
	byID := map[string]*IdentifierSystem{}
	profiles := e.Profiles()
	for _, name := range profiles {
		reg := e.plans[name].reg
		if reg == nil {
			continue
		}
		entry := func(c *idClass) *IdentifierSystem {
			if s, ok := byID[c.id]; ok {
				return s
			}
			s := &IdentifierSystem{ID: c.id, Country: c.country, Kind: c.kind, Action: c.action}
			byID[c.id] = s
			return s
		}
		for sys, c := range reg.bySystem {
			if s := entry(c); !slices.Contains(s.Systems, sys) {
				s.Systems = append(s.Systems, sys)
			}
		}
		for _, c := range reg.prefixes {
			entry(c).Prefix = c.preferred
		}
		for _, m := range []map[string]*idClass{reg.byType, reg.firewallType} {
			for k, c := range m {
				s := entry(c)
				if !slices.Contains(s.Types, k) {
					s.Types = append(s.Types, k)
				}
			}
		}
		// The preferred form of each system (the first listed in the spec)
		// comes first; the others follow in a stable order.
		for _, c := range reg.bySystem {
			s := byID[c.id]
			pref := c.preferred
			sort.Slice(s.Systems, func(i, j int) bool {
				if (s.Systems[i] == pref) != (s.Systems[j] == pref) {
					return s.Systems[i] == pref
				}
				return s.Systems[i] < s.Systems[j]
			})
		}
	}
	out := make([]IdentifierSystem, 0, len(byID))
	for _, s := range byID {
		sort.Strings(s.Types)
		out = append(out, *s)
	}
	sort.Slice(out, func(i, j int) bool { return strings.Compare(out[i].ID, out[j].ID) < 0 })
	return out
}
