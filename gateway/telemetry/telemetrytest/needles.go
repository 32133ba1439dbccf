package telemetrytest

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
)

// personTypes are the resources whose demographic elements are PHI needles.
var personTypes = map[string]bool{"Patient": true, "RelatedPerson": true, "Person": true}

// Needles returns the PHI strings of FHIR JSON documents (resources or
// Bundles): for Patient, RelatedPerson and Person, the id, names (family,
// given, text), identifier values, birth date, address lines, city, district,
// postal code and text, and telecom values; for every Bundle entry that
// holds one of them, the fullUrl's id part. The result is sorted and free of
// duplicates and of strings shorter than MinNeedle.
func Needles(docs ...[]byte) ([]string, error) {
	set := map[string]bool{}
	for i, doc := range docs {
		var v map[string]any
		if err := json.Unmarshal(doc, &v); err != nil {
			return nil, fmt.Errorf("telemetrytest: document %d: %w", i, err)
		}
		collect(v, set)
	}
	out := make([]string, 0, len(set))
	for s := range set {
		if len(s) >= MinNeedle {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out, nil
}

func collect(res map[string]any, set map[string]bool) {
	rt, _ := res["resourceType"].(string)
	if rt == "Bundle" {
		entries, _ := res["entry"].([]any)
		for _, e := range entries {
			entry, _ := e.(map[string]any)
			r, _ := entry["resource"].(map[string]any)
			if r == nil {
				continue
			}
			if t, _ := r["resourceType"].(string); personTypes[t] {
				if u, _ := entry["fullUrl"].(string); u != "" {
					set[u[strings.LastIndexAny(u, ":/")+1:]] = true
				}
			}
			collect(r, set)
		}
		return
	}
	if !personTypes[rt] {
		return
	}
	add := func(v any) {
		switch x := v.(type) {
		case string:
			set[strings.TrimSpace(x)] = true
		case []any:
			for _, y := range x {
				if s, ok := y.(string); ok {
					set[strings.TrimSpace(s)] = true
				}
			}
		}
	}
	each := func(key string, fields ...string) {
		list, _ := res[key].([]any)
		for _, it := range list {
			m, _ := it.(map[string]any)
			for _, f := range fields {
				add(m[f])
			}
		}
	}
	add(res["id"])
	add(res["birthDate"])
	each("name", "family", "given", "text")
	each("identifier", "value")
	each("address", "line", "city", "district", "postalCode", "text")
	each("telecom", "value")
}
