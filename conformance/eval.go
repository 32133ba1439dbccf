package conformance

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// walker evaluates the plan over one JSON document and collects issues.
type walker struct {
	plan    *plan
	opts    *Options
	issues  []Issue
	profile string // profile being evaluated, for Issue.Profile
	// nested holds the profiles that slices (Bundle.entry:patient.resource)
	// impose on nested resources, by location, until the resource is
	// checked.
	nested map[string][]string
}

// item is one occurrence of an element: its JSON value (nil for a primitive
// that has only an extension), its primitive extension object, and where it
// is.
type item struct {
	v   any
	ext any
	loc string
}

func (w *walker) add(sev Severity, code, loc, rule, msg string) {
	w.issues = append(w.issues, Issue{Severity: sev, Code: code, Location: loc, Message: msg, Rule: rule, Profile: w.profile})
}

// result drops duplicates (a nested resource reached through two routes)
// and returns nil for a clean document.
func (w *walker) result() []Issue {
	if len(w.issues) == 0 {
		return nil
	}
	seen := make(map[Issue]bool, len(w.issues))
	out := w.issues[:0]
	for _, i := range w.issues {
		if seen[i] {
			continue
		}
		seen[i] = true
		out = append(out, i)
	}
	return out
}

// resource checks one resource (top level, Bundle entry or contained)
// against the MHP profiles it claims plus extra, then its nested resources.
func (w *walker) resource(obj map[string]any, loc string, extra []string) {
	rt, _ := obj["resourceType"].(string)
	var urls []string
	seen := map[string]bool{}
	addURL := func(u string) {
		u, _, _ = strings.Cut(u, "|")
		if !seen[u] {
			seen[u] = true
			urls = append(urls, u)
		}
	}
	if meta, ok := obj["meta"].(map[string]any); ok {
		if ps, ok := meta["profile"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok && strings.HasPrefix(s, Canonical+"/") {
					addURL(s)
				}
			}
		}
	}
	for _, u := range extra {
		addURL(u)
	}
	if len(urls) == 0 && w.opts.Require && w.plan.covers(rt, obj) {
		w.profile = ""
		w.add(SeverityError, CodeProcessing, loc, "", fmt.Sprintf("%s claims no MHP profile in meta.profile", rt))
	}
	for _, u := range urls {
		pr, ok := w.plan.profiles[u]
		w.profile = u
		switch {
		case !ok:
			w.add(SeverityError, CodeNotFound, loc+".meta.profile", "", "claims an MHP profile that does not exist")
			continue
		case pr.typ != rt:
			w.add(SeverityError, CodeProcessing, loc, "", fmt.Sprintf("profile is for %s, not %s", pr.typ, rt))
			continue
		}
		w.value(pr.root, item{v: obj, loc: loc})
	}
	w.profile = ""

	if entries, ok := obj["entry"].([]any); ok && rt == "Bundle" {
		for i, e := range entries {
			entry, _ := e.(map[string]any)
			res, ok := entry["resource"].(map[string]any)
			if !ok {
				continue
			}
			l := fmt.Sprintf("%s.entry[%d].resource", loc, i)
			w.resource(res, l, w.takeNested(l))
		}
	}
	if contained, ok := obj["contained"].([]any); ok {
		for i, c := range contained {
			res, ok := c.(map[string]any)
			if !ok {
				continue
			}
			l := fmt.Sprintf("%s.contained[%d]", loc, i)
			w.resource(res, l, w.takeNested(l))
		}
	}
}

// covers reports whether an MHP profile is meant for this resource, so
// that Options.Require can ask for it: every resource of a type with an
// MHP profile, except searchset and other non-document Bundles and
// Observations that are neither laboratory results nor a migration
// context (vital signs, social history: IPS content MHP does not profile).
func (p *plan) covers(rt string, obj map[string]any) bool {
	switch rt {
	case "Bundle":
		t, _ := obj["type"].(string)
		return t == "document"
	case "Observation":
		for _, c := range asArray(obj["category"]) {
			for _, cd := range asArray(asObject(c)["coding"]) {
				if code, _ := asObject(cd)["code"].(string); code == "laboratory" {
					return true
				}
			}
		}
		for _, cd := range asArray(asObject(obj["code"])["coding"]) {
			if sys, _ := asObject(cd)["system"].(string); sys == CSContextItem {
				return true
			}
		}
		return false
	}
	return p.typed[rt]
}

func (w *walker) takeNested(loc string) []string {
	p := w.nested[loc]
	delete(w.nested, loc)
	return p
}

// value checks one occurrence of an element: its own rules, then its
// children and slices.
func (w *walker) value(e *element, it item) {
	if it.v != nil {
		if e.fixed != nil && !jsonEqual(it.v, e.fixed) {
			w.add(SeverityError, CodeValue, it.loc, e.id, "value differs from the value fixed by the profile: "+renderExpected(e.fixed))
		}
		if e.pattern != nil && !jsonMatches(it.v, e.pattern) {
			w.add(SeverityError, CodeValue, it.loc, e.id, "value does not match the pattern of the profile: "+renderExpected(e.pattern))
		}
		if e.vs != nil && !inValueSet(e.vs, it.v) {
			w.add(SeverityError, CodeCodeInvalid, it.loc, e.id, "code is not in the required ValueSet "+e.vs.url)
		}
	}
	for _, inv := range e.invariants {
		for _, l := range inv.check(it.v, it.ext, it.loc) {
			w.add(inv.severity, CodeInvariant, l, inv.key, inv.human)
		}
	}
	if len(e.profiles) > 0 && e.name == "resource" {
		// A nested resource is checked on its own, after this walk, with
		// the profiles its slice imposes added to those it claims.
		if _, ok := it.v.(map[string]any); ok {
			if w.nested == nil {
				w.nested = map[string][]string{}
			}
			w.nested[it.loc] = append(w.nested[it.loc], e.profiles...)
		}
		return
	}
	obj, ok := it.v.(map[string]any)
	if !ok {
		return
	}
	for _, c := range e.children {
		items := w.items(c, obj, it.loc)
		w.cardinality(c, c.id, len(items), it.loc+"."+c.name, "")
		for _, ci := range items {
			w.value(c, ci)
		}
		if len(c.slices) > 0 {
			w.slices(c, items, it.loc+"."+c.name)
		}
	}
}

func (w *walker) cardinality(e *element, rule string, n int, loc, slice string) {
	what := "element"
	if slice != "" {
		what = "slice " + slice
	}
	if e.hasMin && n < e.min {
		w.add(SeverityError, CodeRequired, loc, rule, fmt.Sprintf("%s has %d occurrence(s), the profile requires at least %d", what, n, e.min))
	}
	if e.hasMax && e.max >= 0 && n > e.max {
		if e.max == 0 {
			w.add(SeverityError, CodeProcessing, loc, rule, fmt.Sprintf("%s is not allowed by the profile", what))
			return
		}
		w.add(SeverityError, CodeProcessing, loc, rule, fmt.Sprintf("%s has %d occurrence(s), the profile allows at most %d", what, n, e.max))
	}
}

func (w *walker) slices(e *element, items []item, loc string) {
	counts := make([]int, len(e.slices))
	for _, it := range items {
		matched := false
		for i, s := range e.slices {
			if s.matcher(it.v) {
				matched = true
				counts[i]++
				w.value(s, it)
			}
		}
		if !matched && e.slicing != nil && e.slicing.closed {
			w.add(SeverityError, CodeStructure, it.loc, e.id, "matches no slice of a closed slicing")
		}
	}
	for i, s := range e.slices {
		w.cardinality(s, s.id, counts[i], loc, s.sliceName)
	}
}

// items lists the occurrences of child c in obj: a JSON property (with
// its _primitive companion) or, for a choice element, every value[x]
// property; a type not allowed by the profile is reported.
func (w *walker) items(c *element, obj map[string]any, loc string) []item {
	if strings.HasSuffix(c.name, "[x]") {
		stem := strings.TrimSuffix(c.name, "[x]")
		var out []item
		for _, key := range choiceKeys(obj, stem) {
			suffix := key[len(stem):]
			if len(c.types) > 0 && !typeAllowed(suffix, c.types) {
				w.add(SeverityError, CodeStructure, loc+"."+key, c.id, fmt.Sprintf("type %s is not allowed here by the profile (allowed: %s)", typeCode(suffix), strings.Join(c.types, ", ")))
			}
			out = append(out, occurrences(obj, key, loc)...)
		}
		return out
	}
	return occurrences(obj, c.name, loc)
}

func choiceKeys(obj map[string]any, stem string) []string {
	var keys []string
	for k := range obj {
		if len(k) > len(stem) && strings.HasPrefix(k, stem) && unicode.IsUpper(rune(k[len(stem)])) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// primitiveTypes are the R4 primitive types, whose type codes start with a
// lower-case letter although their JSON property suffix does not.
var primitiveTypes = map[string]bool{
	"base64Binary": true, "boolean": true, "canonical": true, "code": true, "date": true,
	"dateTime": true, "decimal": true, "id": true, "instant": true, "integer": true,
	"markdown": true, "oid": true, "positiveInt": true, "string": true, "time": true,
	"unsignedInt": true, "uri": true, "url": true, "uuid": true,
}

// typeCode turns a choice property suffix ("DateTime") into the FHIR type
// code ("dateTime").
func typeCode(suffix string) string {
	lower := strings.ToLower(suffix[:1]) + suffix[1:]
	if primitiveTypes[lower] {
		return lower
	}
	return suffix
}

func typeAllowed(suffix string, types []string) bool {
	code := typeCode(suffix)
	for _, t := range types {
		if t == code {
			return true
		}
	}
	return false
}

func occurrences(obj map[string]any, key, loc string) []item {
	v, hasV := obj[key]
	x, hasX := obj["_"+key]
	if !hasV && !hasX {
		return nil
	}
	l := loc + "." + key
	va, vArr := v.([]any)
	xa, xArr := x.([]any)
	if !vArr && !xArr {
		return []item{{v: v, ext: x, loc: l}}
	}
	n := max(len(va), len(xa))
	out := make([]item, 0, n)
	for i := 0; i < n; i++ {
		var it item
		if i < len(va) {
			it.v = va[i]
		}
		if i < len(xa) {
			it.ext = xa[i]
		}
		if it.v == nil && it.ext == nil {
			continue
		}
		it.loc = l + "[" + strconv.Itoa(i) + "]"
		out = append(out, it)
	}
	return out
}

// globals runs the rules that hold wherever they occur, whatever profile
// is claimed: MHP extensions must follow their definitions, and forbidden
// codes never appear.
func (w *walker) globals(v any, loc string) {
	switch x := v.(type) {
	case map[string]any:
		for _, key := range sortedKeys(x) {
			child := x[key]
			l := loc + "." + key
			if arr, ok := child.([]any); ok {
				for i, c := range arr {
					il := l + "[" + strconv.Itoa(i) + "]"
					if key == "extension" || key == "modifierExtension" {
						w.extension(c, il)
					}
					w.globals(c, il)
				}
				continue
			}
			w.globals(child, l)
		}
		if _, ok := x["code"].(string); ok {
			w.forbidden(x, loc)
		}
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (w *walker) extension(v any, loc string) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	url, _ := obj["url"].(string)
	if !strings.HasPrefix(url, Canonical+"/") {
		return
	}
	pr, ok := w.plan.extensions[url]
	w.profile = url
	defer func() { w.profile = "" }()
	if !ok {
		w.add(SeverityError, CodeNotFound, loc, "", "uses an MHP extension that does not exist")
		return
	}
	w.value(pr.root, item{v: obj, loc: loc})
}

const v3ObservationValue = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

// forbidden reports codes the MHP never emits (mhp-1): v3 ILGIM is
// stigmatising; mhp-migration-status#irregular-status replaces it.
func (w *walker) forbidden(v any, loc string) {
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	sys, _ := obj["system"].(string)
	code, _ := obj["code"].(string)
	if sys == v3ObservationValue && code == "ILGIM" {
		w.profile = ""
		w.add(SeverityError, CodeCodeInvalid, loc, "mhp-1", "the code ILGIM is never emitted: use "+CSMigrationStatus+"#irregular-status")
	}
}

// renderExpected shows a profile's fixed or pattern value; it comes from
// the profile, never from the patient, so it is safe in a message.
func renderExpected(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return "(unprintable)"
	}
	const limit = 200
	if len(b) > limit {
		return string(b[:limit]) + "..."
	}
	return string(b)
}

func jsonEqual(a, b any) bool {
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok || !jsonEqual(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !jsonEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		return ok && x == y
	default:
		return a == b
	}
}

// jsonMatches reports whether v holds everything pattern holds (FHIR
// pattern[x] semantics): objects by their pattern keys, arrays by each
// pattern element matching some element of v.
func jsonMatches(v, pattern any) bool {
	switch p := pattern.(type) {
	case map[string]any:
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range p {
			if !jsonMatches(obj[k], pv) {
				return false
			}
		}
		return true
	case []any:
		arr, ok := v.([]any)
		if !ok {
			return false
		}
		for _, pe := range p {
			found := false
			for _, ve := range arr {
				if jsonMatches(ve, pe) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	default:
		return jsonEqual(v, pattern)
	}
}

// inValueSet checks a code, Coding or CodeableConcept against a ValueSet.
// A CodeableConcept passes when one of its codings is in it.
func inValueSet(vs *valueSet, v any) bool {
	switch x := v.(type) {
	case string:
		return vs.hasCode(x)
	case map[string]any:
		if codings, ok := x["coding"].([]any); ok {
			for _, c := range codings {
				if inValueSet(vs, c) {
					return true
				}
			}
			return false
		}
		sys, _ := x["system"].(string)
		code, _ := x["code"].(string)
		return code != "" && vs.hasCoding(sys, code)
	}
	return false
}
