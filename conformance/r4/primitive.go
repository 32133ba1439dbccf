package r4

import (
	"bytes"
	"encoding/json"
	"strings"
)

// Normalize rewrites the forms of primitive extensions that R4 JSON allows
// but jsonformat rejects into forms it reads, without changing what the
// resource says:
//
//   - a null in a repeated primitive's value array ("given": [null, "b"])
//     or in its "_" array ("_given": [null, {...}]) is the placeholder R4
//     requires to keep the two arrays aligned; it becomes {} (an element
//     with nothing to add), which jsonformat accepts in both arrays;
//   - an index that is null in both arrays (or null with no "_" array at
//     all) says nothing and is dropped from both;
//   - a member whose value is null ("_birthDate": null) says nothing and
//     is dropped.
//
// Extensions without a value, "id" on a primitive and "_x" objects without
// "x" need no rewriting: jsonformat reads them as they are. b is returned
// unchanged when it holds no null at all (the common case, checked without
// decoding) or is not JSON (the codec reports that).
func Normalize(b []byte) []byte {
	if !bytes.Contains(b, []byte("null")) {
		return b
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil || d.More() {
		return b
	}
	if !normalize(v) {
		return b
	}
	out, err := json.Marshal(v)
	if err != nil {
		return b
	}
	return out
}

// normalize rewrites v in place and tells whether anything changed.
func normalize(v any) bool {
	changed := false
	switch t := v.(type) {
	case []any:
		for _, e := range t {
			if normalize(e) {
				changed = true
			}
		}
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				changed = true
			}
		}
		for k, e := range t {
			if strings.HasPrefix(k, "_") {
				continue
			}
			vals, ok := e.([]any)
			if !ok {
				continue
			}
			exts, _ := t["_"+k].([]any)
			if alignNulls(t, k, vals, exts) {
				changed = true
			}
		}
		// "_x" arrays without an "x" array.
		for k, e := range t {
			if !strings.HasPrefix(k, "_") {
				continue
			}
			if _, paired := t[k[1:]].([]any); paired {
				continue
			}
			exts, ok := e.([]any)
			if !ok {
				continue
			}
			if alignNulls(t, k[1:], nil, exts) {
				changed = true
			}
		}
		for _, e := range t {
			if normalize(e) {
				changed = true
			}
		}
	}
	return changed
}

// alignNulls rewrites the value array vals of key k and its "_" array
// exts (either may be nil). Arrays of different lengths are left as they
// are: that is invalid R4 and the codec says so.
func alignNulls(obj map[string]any, k string, vals, exts []any) bool {
	if vals != nil && exts != nil && len(vals) != len(exts) {
		return false
	}
	n := max(len(vals), len(exts))
	has := func(xs []any, i int) bool { return xs != nil && xs[i] != nil }
	changed := false
	var keptVals, keptExts []any
	for i := range n {
		hv, he := has(vals, i), has(exts, i)
		switch {
		case !hv && !he:
			changed = true
			continue
		case vals != nil && !hv:
			vals[i] = map[string]any{}
			changed = true
		case exts != nil && !he:
			exts[i] = map[string]any{}
			changed = true
		}
		if vals != nil {
			keptVals = append(keptVals, vals[i])
		}
		if exts != nil {
			keptExts = append(keptExts, exts[i])
		}
	}
	if !changed {
		return false
	}
	set := func(key string, orig, kept []any) {
		if orig == nil {
			return
		}
		if len(kept) == 0 {
			delete(obj, key)
			return
		}
		obj[key] = kept
	}
	set(k, vals, keptVals)
	set("_"+k, exts, keptExts)
	return true
}
