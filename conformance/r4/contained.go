package r4

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ContainedViolations checks FHIR invariant dom-3 on one resource in R4
// JSON: every local reference ("#id") inside the resource, its contained
// resources included, names a contained resource, and every contained
// resource is referenced from elsewhere in the resource (or itself refers
// to its container with "#"). It returns one message per violation, naming
// element paths only (never values), sorted; nil when the resource holds.
// A Bundle's entries are each checked as resources of their own.
func ContainedViolations(b []byte) []string {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var root map[string]any
	if err := d.Decode(&root); err != nil {
		return []string{"not a JSON object"}
	}
	return containedViolations(root)
}

func containedViolations(root map[string]any) []string {
	typ, _ := root["resourceType"].(string)
	var out []string
	if typ == "Bundle" {
		entries, _ := root["entry"].([]any)
		for i, e := range entries {
			em, _ := e.(map[string]any)
			if r, ok := em["resource"].(map[string]any); ok {
				for _, v := range containedViolations(r) {
					out = append(out, fmt.Sprintf("Bundle.entry[%d]: %s", i, v))
				}
			}
		}
		return out
	}
	ids := map[string]int{}
	contained, _ := root["contained"].([]any)
	for i, c := range contained {
		cm, _ := c.(map[string]any)
		id, _ := cm["id"].(string)
		if id == "" {
			out = append(out, fmt.Sprintf("%s.contained[%d] has no id", typ, i))
			continue
		}
		ids[id] = i
	}
	referenced := map[string]bool{}
	refersToContainer := map[int]bool{}
	var walk func(v any, path string, inContained int)
	walk = func(v any, path string, inContained int) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["reference"].(string); ok && strings.HasPrefix(ref, "#") {
				switch id := ref[1:]; {
				case id == "":
					if inContained >= 0 {
						refersToContainer[inContained] = true
					} else {
						out = append(out, path+".reference: \"#\" outside a contained resource")
					}
				case func() bool { _, ok := ids[id]; return ok }():
					if ids[id] != inContained {
						referenced[id] = true
					}
				default:
					out = append(out, path+".reference: local reference names no contained resource")
				}
			}
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if k == "contained" && path == typ {
					continue
				}
				walk(x[k], path+"."+k, inContained)
			}
		case []any:
			for i, e := range x {
				walk(e, path+"["+strconv.Itoa(i)+"]", inContained)
			}
		}
	}
	walk(root, typ, -1)
	for i, c := range contained {
		walk(c, fmt.Sprintf("%s.contained[%d]", typ, i), i)
	}
	for id, i := range ids {
		if !referenced[id] && !refersToContainer[i] {
			out = append(out, fmt.Sprintf("%s.contained[%d] is referenced from nowhere in the resource", typ, i))
		}
	}
	sort.Strings(out)
	return out
}

// ResolveContained makes every local reference ("#id") of a resource that
// names no contained resource display-only (FHIR dom-3), for a resource
// some of whose contained resources were removed after it was mapped (a
// policy redaction). A reference left with nothing gets data-absent-reason
// "masked". It returns the resource and the paths of the references it
// changed; b itself when there was nothing to change.
func ResolveContained(b []byte) ([]byte, []string) {
	if !bytes.Contains(b, []byte(`"#`)) {
		return b, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var root map[string]any
	if err := d.Decode(&root); err != nil {
		return b, nil
	}
	typ, _ := root["resourceType"].(string)
	ids := map[string]bool{}
	contained, _ := root["contained"].([]any)
	for _, c := range contained {
		if cm, ok := c.(map[string]any); ok {
			if id, _ := cm["id"].(string); id != "" {
				ids[id] = true
			}
		}
	}
	var changed []string
	var walk func(v any, path string)
	walk = func(v any, path string) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["reference"].(string); ok && len(ref) > 1 && ref[0] == '#' && !ids[ref[1:]] {
				delete(x, "reference")
				changed = append(changed, path+".reference")
				if len(x) == 0 {
					x["extension"] = []any{map[string]any{
						"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}}
				}
			}
			for k, e := range x {
				walk(e, path+"."+k)
			}
		case []any:
			for i, e := range x {
				walk(e, path+"["+strconv.Itoa(i)+"]")
			}
		}
	}
	walk(root, typ)
	if len(changed) == 0 {
		return b, nil
	}
	out, err := json.Marshal(root)
	if err != nil {
		return b, nil
	}
	sort.Strings(changed)
	return out, changed
}
