package measures

import (
	"encoding/json"
	"fmt"
	"sort"
)

// ValueSet is a shipped ValueSet, compiled to its codes. Only enumerated
// value sets are read (compose.include with system and concept); the gateway
// has no terminology server, so filters and nested value sets are refused at
// load rather than half-understood.
type ValueSet struct {
	// URL is the canonical URL the criteria name in memberOf().
	URL string
	// Codes maps each system to its codes.
	Codes map[string]map[string]bool
}

type valueSetJSON struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	Compose      struct {
		Include []struct {
			System   string                  `json:"system"`
			Concept  []struct{ Code string } `json:"concept"`
			Filter   []json.RawMessage       `json:"filter"`
			ValueSet []string                `json:"valueSet"`
		} `json:"include"`
		Exclude []json.RawMessage `json:"exclude"`
	} `json:"compose"`
}

func compileValueSet(b []byte) (*ValueSet, error) {
	var v valueSetJSON
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v.ResourceType != "ValueSet" || v.URL == "" {
		return nil, fmt.Errorf("not a ValueSet with a url")
	}
	if len(v.Compose.Exclude) > 0 {
		return nil, fmt.Errorf("compose.exclude is not supported: list the codes that are in")
	}
	vs := &ValueSet{URL: v.URL, Codes: map[string]map[string]bool{}}
	for i, inc := range v.Compose.Include {
		if len(inc.Filter) > 0 || len(inc.ValueSet) > 0 {
			return nil, fmt.Errorf("compose.include[%d]: filters and nested value sets are not supported: enumerate the concepts", i)
		}
		if inc.System == "" || len(inc.Concept) == 0 {
			return nil, fmt.Errorf("compose.include[%d]: want a system and its concepts", i)
		}
		set := vs.Codes[inc.System]
		if set == nil {
			set = map[string]bool{}
			vs.Codes[inc.System] = set
		}
		for _, c := range inc.Concept {
			set[c.Code] = true
		}
	}
	if len(vs.Codes) == 0 {
		return nil, fmt.Errorf("compose.include is empty")
	}
	return vs, nil
}

// holds says whether a CodeableConcept, a Coding or a bare code is in the
// value set (a bare code matches in any of its systems).
func (vs *ValueSet) holds(item any) bool {
	switch x := item.(type) {
	case string:
		for _, set := range vs.Codes {
			if set[x] {
				return true
			}
		}
	case map[string]any:
		if codings, ok := x["coding"].([]any); ok {
			for _, c := range codings {
				if vs.holds(c) {
					return true
				}
			}
			return false
		}
		sys, _ := x["system"].(string)
		code, _ := x["code"].(string)
		return vs.Codes[sys][code]
	}
	return false
}

// Tokens lists the value set's codes as FHIR token search values
// (system|code), sorted.
func (vs *ValueSet) Tokens() []string {
	var out []string
	for sys, set := range vs.Codes {
		for code := range set {
			out = append(out, sys+"|"+code)
		}
	}
	sort.Strings(out)
	return out
}
