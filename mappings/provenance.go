package mappings

import (
	"fmt"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance"
)

// SplitDerivedID undoes DerivedID: the upstream id of the original and the
// kind of derived output, or false for an ordinary upstream id.
func SplitDerivedID(s string) (upstreamID, kind string, ok bool) {
	return strings.Cut(s, "/")
}

// derivedFrom names the resource type a derived output was split from.
var derivedFrom = map[string]string{
	"migration-context": "Patient",
}

// Provenance renders the mhp-provenance of one mapped output: its target is
// the MHP resource; its entity names the national original by source and
// gateway id (Options.ID, so no upstream id leaves when one is set), the
// national profile and the mapping version; its activity is a transform.
// opts must be those the output was mapped with (SourceID, ID, DerivedID,
// Now). Its id derives from the original's upstream id with kind
// "provenance" ("migration-context-provenance" for a split-out output).
func (e *Engine) Provenance(out Output, opts Options, profile string) ([]byte, error) {
	p, ok := e.plans[profile]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownProfile, profile)
	}
	if out.Type == "" || out.ID == "" || out.UpstreamID == "" {
		return nil, fmt.Errorf("%w: a Provenance needs an output with type, id and upstream id", ErrNotMappable)
	}
	origType, origUpstream := out.Type, out.UpstreamID
	provKind := "provenance"
	if up, kind, derived := SplitDerivedID(out.UpstreamID); derived {
		origUpstream = up
		provKind = kind + "-provenance"
		if t, ok := derivedFrom[kind]; ok {
			origType = t
		}
	}
	origID := origUpstream
	if opts.ID != nil {
		origID = opts.ID(origType, origUpstream)
	}
	m := &mapper{p: p, opts: opts, typ: "Provenance"}
	provID, _ := m.derivedID("Provenance", origUpstream, provKind)
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	source := opts.SourceID
	if source == "" {
		source = "unnamed"
	}
	prov := object{
		"resourceType": "Provenance",
		"meta":         object{"profile": []any{conformance.ProfileProvenance}},
		"target":       []any{object{"reference": out.Type + "/" + out.ID}},
		"recorded":     now().UTC().Format("2006-01-02T15:04:05.000Z07:00"),
		"policy":       []any{MappingURI(p.profile, p.version)},
		"activity":     concept(sysLifecycle, "transform", "Transform"),
		"agent": []any{object{
			"type": concept(sysProvAgentType, "assembler", "Assembler"),
			"who":  object{"display": "mhg mapping engine, " + p.profile + " mapping " + p.version},
		}},
		"entity": []any{object{
			"role": "source",
			"what": object{
				"type":       origType,
				"identifier": object{"system": SourceIdentifierSystem(source), "value": origID},
				"display":    fmt.Sprintf("%s from source %s, national profile %s", origType, source, p.profile),
			},
		}},
	}
	if provID != "" {
		prov["id"] = provID
	}
	if opts.SourceID != "" {
		prov["meta"].(object)["source"] = SourceURI(opts.SourceID)
	}
	b, err := encodeObject(prov)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return b, nil
}
