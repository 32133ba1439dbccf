package mappings

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

// Issue severities and codes the engine reports.
const (
	sevError   = "error"
	sevWarning = "warning"
	sevInfo    = "information"

	codeNotSupported = "not-supported"
	codeNotFound     = "not-found"
	codeIncomplete   = "incomplete"
	codeInformation  = "informational"
	codeSecurity     = "security"
	codeProcessing   = "processing"
)

// mapper holds the state of mapping one national resource.
type mapper struct {
	p        *plan
	opts     Options
	typ      string
	upstream string
	issues   []Issue
	labels   []object
	class    string
	// fw collects what moves out of a Patient into its migration-context.
	fw *firewallItems
	// pending are Patient extensions transforms add; appended after the
	// walk so that the walk's order does not matter.
	pending []any
	// primParent and primField name the primitive whose "_x" object the
	// walk is in ("birthDate" of the Patient), for transforms that adjust
	// the value next to an extension.
	primParent object
	primField  string
	fatal      error
	// sel, when set, is the selection of MapSelected: work whose only
	// effect is on elements not selected (the required-element check of
	// other elements, meta and its labels) is skipped.
	sel *Selection
	// droppedContained are the ids of contained resources not passed on;
	// references to them are made display-only (unlinkContained).
	droppedContained map[string]string
}

type firewallItems struct {
	exts   []any
	idents []any
	status []string
}

func (m *mapper) issue(sev, code, path, format string, args ...any) {
	m.issues = append(m.issues, Issue{Severity: sev, Code: code, Path: path, Message: fmt.Sprintf(format, args...)})
}

// issueDomestic records an issue only the source's own country may read
// (Issue.Domestic).
func (m *mapper) issueDomestic(sev, code, path, format string, args ...any) {
	m.issues = append(m.issues, Issue{Severity: sev, Code: code, Path: path, Message: fmt.Sprintf(format, args...), Domestic: true})
}

// mapResource maps one decoded national resource; sel is MapSelected's
// selection (nil: everything).
func (p *plan) mapResource(root object, opts Options, sel *Selection) (Result, error) {
	typ := getStr(root, "resourceType")
	if typ == "" {
		return Result{}, fmt.Errorf("%w: no resourceType", ErrNotMappable)
	}
	rp, ok := p.resources[typ]
	if !ok {
		return Result{}, fmt.Errorf("%w: profile %s does not cover %s resources", ErrNotMappable, p.profile, typ)
	}
	m := &mapper{p: p, opts: opts, typ: typ, upstream: getStr(root, "id"), class: ClassClinical, sel: sel}
	if rule := p.contextRule(root, typ); rule != nil {
		return m.observationToContext(root, rule)
	}
	if typ == "Patient" {
		m.fw = &firewallItems{}
	}
	for _, k := range rp.drop {
		if _, ok := root[k]; ok {
			delete(root, k)
			m.issue(sevInfo, codeInformation, typ+"."+k, "%s.%s is not passed on (minimisation)", typ, k)
		}
	}
	if typ == "Patient" {
		m.identifiers(root)
	}
	m.walk(root, typ)
	if m.fatal != nil {
		return Result{}, m.fatal
	}
	if len(m.droppedContained) > 0 {
		m.unlinkContained(root, typ)
	}
	if len(m.pending) > 0 {
		root["extension"] = append(getArr(root, "extension"), m.pending...)
	}
	m.translate(root, typ)
	m.countries(root, typ)
	for _, rt := range rp.transforms {
		rt.fn(m, root)
	}
	m.required(root, rp)
	if sel == nil || sel.all {
		// The labels and the class go to meta and Output.Class alone.
		m.scanLabels(root)
		m.setMeta(root, rp.profileFor(root))
	}
	outID := m.setID(root, typ, m.upstream)
	prune(root)
	res := Result{}
	b, tree, err := emit(root, opts)
	if err != nil {
		return Result{}, fmt.Errorf("%w: encode: %v", ErrNotMappable, err)
	}
	res.Outputs = append(res.Outputs, Output{Type: typ, ID: outID, UpstreamID: m.upstream, Class: m.class, JSON: b, Tree: tree})
	if m.fw != nil && (len(m.fw.exts) > 0 || len(m.fw.idents) > 0) {
		out, err := m.patientContext(outID)
		if err != nil {
			return Result{}, err
		}
		res.Outputs = append(res.Outputs, out)
	}
	res.Issues = m.sortedIssues()
	return res, nil
}

func (m *mapper) sortedIssues() []Issue {
	sort.SliceStable(m.issues, func(i, j int) bool { return m.issues[i].Path < m.issues[j].Path })
	return m.issues
}

// profileFor picks the MHP profile: by category where the rule has one
// (Observation), else the type's profile.
func (rp *resourcePlan) profileFor(root object) string {
	if len(rp.byCategory) > 0 {
		for _, cat := range objects(root["category"]) {
			for _, c := range objects(cat["coding"]) {
				if getStr(c, "system") == sysObsCategory {
					if prof, ok := rp.byCategory[getStr(c, "code")]; ok {
						return prof
					}
				}
			}
		}
		return ""
	}
	return rp.profile
}

// walk visits every element of the resource: it applies the extension
// rules, rewrites references, replaces codes that must never be emitted
// and maps contained resources.
func (m *mapper) walk(o object, path string) {
	for k, v := range o {
		switch k {
		case "extension", "modifierExtension":
			arr, ok := v.([]any)
			if !ok {
				delete(o, k)
				continue
			}
			o[k] = m.extensions(o, k, arr, path+"."+k)
			continue
		case "reference":
			// Consent.provision.actor.reference is a Reference named
			// "reference"; everywhere else the key holds the literal.
			if s, ok := v.(string); ok {
				m.reference(o, s, path)
				continue
			}
		case "contained":
			if arr, ok := v.([]any); ok {
				o[k] = m.contained(arr, path+"."+k)
			}
			continue
		}
		switch x := v.(type) {
		case object:
			if strings.HasPrefix(k, "_") {
				pp, pf := m.primParent, m.primField
				m.primParent, m.primField = o, k[1:]
				m.walk(x, path+"."+k)
				m.primParent, m.primField = pp, pf
				continue
			}
			m.walk(x, path+"."+k)
		case []any:
			for i, e := range x {
				if eo, ok := e.(object); ok {
					m.walk(eo, path+"."+k+"["+strconv.Itoa(i)+"]")
				}
			}
		}
	}
	m.replaceCoding(o, path)
}

// extensions applies the extension rules to one extension array.
func (m *mapper) extensions(owner object, key string, arr []any, path string) []any {
	out := make([]any, 0, len(arr))
	for i, e := range arr {
		ext, ok := e.(object)
		if !ok {
			continue
		}
		ip := path + "[" + strconv.Itoa(i) + "]"
		url := getStr(ext, "url")
		if url != "" && !strings.Contains(url, ":") {
			// A relative url names a part of a complex extension that a
			// rule already let through.
			m.walk(ext, ip)
			out = append(out, ext)
			continue
		}
		rule := m.p.ext[url]
		if key == "modifierExtension" && (rule == nil || rule.Action != actKeep) {
			if m.fatal == nil {
				m.fatal = fmt.Errorf("%w: %s: modifier extension %s is not known to profile %s and changes the meaning of the resource", ErrNotMappable, ip, url, m.p.profile)
			}
			continue
		}
		if rule == nil {
			m.issue(sevInfo, codeNotSupported, ip, "extension %s is not in the %s mapping; dropped", url, m.p.profile)
			continue
		}
		switch rule.Action {
		case actKeep:
			m.walk(ext, ip)
			out = append(out, ext)
		case actDrop:
			m.issue(sevInfo, codeInformation, ip, "extension %s dropped: %s", url, reasonOr(rule.Reason, "not needed for care across borders"))
		case actReligion:
			if m.opts.KeepReligion {
				m.walk(ext, ip)
				out = append(out, ext)
				continue
			}
			m.withhold("religion", url, ext)
			m.issueDomestic(sevInfo, codeInformation, ip, "religion is not passed on unless the patient asked for it")
		case actOriginOnly:
			m.withhold("origin-only", url, ext)
			m.issueDomestic(sevInfo, codeInformation, ip, "extension %s never leaves the country of origin: %s", url, reasonOr(rule.Reason, "protected attribute"))
		case actFirewall:
			if m.fw != nil && path == "Patient.extension" {
				m.walk(ext, ip)
				m.fw.exts = append(m.fw.exts, ext)
				m.fw.status = append(m.fw.status, statusFrom(rule.statusMap, ext)...)
				m.issue(sevInfo, codeSecurity, ip, "class S extension %s moved to the restricted migration-context", url)
				continue
			}
			m.issue(sevWarning, codeSecurity, ip, "class S extension %s found outside Patient.extension; dropped", url)
		case actCopy:
			m.walk(ext, ip)
			c := deepCopy(ext).(object)
			c["url"] = rule.To
			out = append(out, ext, c)
		case actRename:
			ext["url"] = rule.To
			m.walk(ext, ip)
			out = append(out, ext)
		case actTransform:
			tc := &transformCtx{m: m, owner: owner, path: ip, with: rule.With, parent: m.primParent, field: m.primField}
			out = append(out, rule.transform.fn(tc, ext)...)
		}
	}
	return out
}

func reasonOr(reason, def string) string {
	if reason != "" {
		return reason
	}
	return def
}

func (m *mapper) withhold(kind, url string, ext object) {
	if m.opts.Withheld == nil {
		return
	}
	b, err := json.Marshal(ext)
	if err != nil {
		return
	}
	m.opts.Withheld(Withheld{Kind: kind, ResourceType: m.typ, UpstreamID: m.upstream, URL: url, JSON: b})
}

// reference rewrites a literal reference through Options.ID. A reference
// the ID function cannot take (absolute URL, urn:uuid) is removed so that
// no upstream id leaves; its display stays.
func (m *mapper) reference(o object, s, path string) {
	if strings.HasPrefix(s, "#") {
		return
	}
	typ, id, ok := splitReference(s)
	unresolved := false
	if !ok && m.opts.ResolveReference != nil {
		if r, resolved := m.opts.ResolveReference(s); resolved {
			typ, id, ok = splitReference(r)
			if ok && m.opts.ID == nil {
				o["reference"] = typ + "/" + id
				return
			}
		}
		// A urn the Bundle does not resolve means nothing outside it.
		unresolved = !ok && strings.HasPrefix(s, "urn:")
	}
	if m.opts.ID == nil && !unresolved {
		return
	}
	if ok {
		o["reference"] = typ + "/" + m.opts.ID(typ, id)
		return
	}
	delete(o, "reference")
	m.issue(sevInfo, codeProcessing, path+".reference", "a reference that is not Type/id and cannot be resolved was removed")
	if len(o) == 0 {
		o["extension"] = []any{dataAbsent("unknown")}
	}
}

// splitReference splits "Type/id" and "Type/id/_history/v".
func splitReference(s string) (typ, id string, ok bool) {
	parts := strings.Split(s, "/")
	if len(parts) != 2 && !(len(parts) == 4 && parts[2] == "_history") {
		return "", "", false
	}
	if !isResourceTypeName(parts[0]) || !r4.IsID(parts[1]) {
		return "", "", false
	}
	return parts[0], parts[1], true
}

// contained maps contained resources with the rules of their type; a
// contained resource of a type the profile does not cover, or a Patient,
// is dropped.
func (m *mapper) contained(arr []any, path string) []any {
	out := make([]any, 0, len(arr))
	for i, e := range arr {
		c, ok := e.(object)
		if !ok {
			continue
		}
		ip := path + "[" + strconv.Itoa(i) + "]"
		typ := getStr(c, "resourceType")
		if _, covered := m.p.resources[typ]; !covered || typ == "Patient" {
			m.issue(sevWarning, codeNotSupported, ip, "contained %s resource is not mapped; dropped, and references to it keep only their display", typeOr(typ))
			if id := getStr(c, "id"); id != "" {
				if m.droppedContained == nil {
					m.droppedContained = map[string]string{}
				}
				m.droppedContained[id] = typ
			}
			continue
		}
		for _, k := range m.p.resources[typ].drop {
			delete(c, k)
		}
		saved := m.fw
		m.fw = nil
		m.walk(c, ip)
		m.translate(c, typ)
		m.countries(c, typ)
		m.fw = saved
		delete(c, "meta")
		out = append(out, c)
	}
	return out
}

// unlinkContained makes every reference to a contained resource that was
// not passed on display-only (FHIR dom-3: a "#" reference must resolve
// inside the resource), and says so in the loss report. A reference left
// with nothing gets data-absent-reason.
func (m *mapper) unlinkContained(o object, path string) {
	if ref, ok := o["reference"].(string); ok && strings.HasPrefix(ref, "#") {
		if typ, dropped := m.droppedContained[ref[1:]]; dropped {
			delete(o, "reference")
			m.issue(sevWarning, codeIncomplete, path+".reference",
				"the contained %s this reference pointed to was not passed on; only the reference's display remains", typ)
			if len(o) == 0 {
				o["extension"] = []any{dataAbsent("unknown")}
			}
		}
	}
	for k, v := range o {
		switch x := v.(type) {
		case object:
			m.unlinkContained(x, path+"."+k)
		case []any:
			for i, e := range x {
				if eo, ok := e.(object); ok {
					m.unlinkContained(eo, path+"."+k+"["+strconv.Itoa(i)+"]")
				}
			}
		}
	}
}

func typeOr(t string) string {
	if t == "" {
		return "an untyped"
	}
	return "a " + t
}

// replaceCoding replaces a coding the MHP must never emit (ILGIM).
func (m *mapper) replaceCoding(o object, path string) {
	sys, okS := o["system"].(string)
	code, okC := o["code"].(string)
	if !okS || !okC {
		return
	}
	r, ok := m.p.replace[codingKey{sys, code}]
	if !ok {
		return
	}
	o["system"] = r.To.System
	o["code"] = r.To.Code
	delete(o, "version")
	delete(o, "display")
	if r.To.Display != "" {
		o["display"] = r.To.Display
	}
	m.issue(sevInfo, codeInformation, path, "a code that must never be emitted was replaced: %s", reasonOr(r.Reason, "stigmatising"))
	if r.Class == ClassSensitive {
		m.class = ClassSensitive
	}
}

// identifiers classifies Patient.identifier through the registry: national
// health ids, passports and local record numbers stay (with OID and URL
// forms unified), status-revealing ones move to the migration-context, and
// the rest is dropped.
func (m *mapper) identifiers(root object) {
	arr, ok := root["identifier"].([]any)
	if !ok {
		return
	}
	out := make([]any, 0, len(arr))
	for i, e := range arr {
		id, ok := e.(object)
		if !ok {
			continue
		}
		path := "Patient.identifier[" + strconv.Itoa(i) + "]"
		system := getStr(id, "system")
		var types []codingKey
		for _, c := range objects(getObj(id, "type")["coding"]) {
			types = append(types, codingKey{getStr(c, "system"), getStr(c, "code")})
		}
		c := m.p.reg.classify(system, types)
		switch {
		case c == nil:
			m.issue(sevInfo, codeNotSupported, path, "identifier system %s is not in the identifier registry; dropped", orNone(system))
		case c.action == idDrop:
			m.issue(sevInfo, codeInformation, path, "%s identifier dropped: %s", c.kind, reasonOr(c.reason, "not needed for care across borders"))
		case c.action == idFirewall:
			m.normaliseIdentifier(id, c)
			m.fw.idents = append(m.fw.idents, id)
			if c.status != "" {
				m.fw.status = append(m.fw.status, c.status)
			}
			m.issue(sevInfo, codeSecurity, path, "status-revealing identifier (%s) moved to the restricted migration-context", c.id)
		default:
			m.normaliseIdentifier(id, c)
			out = append(out, id)
		}
	}
	root["identifier"] = out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func (m *mapper) normaliseIdentifier(id object, c *idClass) {
	if _, exact := m.p.reg.bySystem[getStr(id, "system")]; exact && c.preferred != "" {
		id["system"] = c.preferred
	}
	if c.typ != nil && getObj(id, "type") == nil {
		id["type"] = concept(c.typ.System, c.typ.Code, c.typ.Display)
	}
}

// translate adds international codings beside the national ones.
func (m *mapper) translate(root object, typ string) {
	for _, rule := range m.p.translate[typ] {
		for _, cc := range rule.path.objects(root) {
			m.translateConcept(cc, rule)
		}
	}
}

func (m *mapper) translateConcept(cc object, rule *translateRule) {
	codings := objects(cc["coding"])
	present := map[string]bool{}
	for _, c := range codings {
		present[getStr(c, "system")] = true
	}
	var added []any
	// Maps are tried in the order the spec lists them, so that an exact map
	// (ATC-DE to ATC) wins over an approximate one (PZN to ATC).
	for _, cm := range rule.maps {
		for _, c := range codings {
			sys, code := getStr(c, "system"), getStr(c, "code")
			if sys == "" || code == "" {
				continue
			}
			trs, covered := cm.lookup(sys, code)
			if !covered {
				continue
			}
			if len(trs) == 0 {
				if cm.rule != nil {
					m.issue(sevWarning, codeNotFound, rule.path.text, "code rule %s: a code of %s is not written as a code of that edition; only the national coding is kept", cm.id, sys)
					continue
				}
				m.issue(sevWarning, codeNotFound, rule.path.text, "ConceptMap %s has no entry for a code of %s; only the national coding is kept", cm.id, sys)
				continue
			}
			for _, tr := range trs {
				if tr.none() {
					m.issue(sevInfo, codeInformation, rule.path.text, "%s %s: a code of %s has no equivalent in %s", cm.kind(), cm.id, sys, tr.system)
					continue
				}
				if present[tr.system] {
					continue
				}
				present[tr.system] = true
				added = append(added, coding(tr.system, tr.code, tr.display))
				if !tr.exact() {
					m.issue(sevInfo, codeInformation, rule.path.text, "%s %s: %s code added with equivalence %s (approximate)", cm.kind(), cm.id, tr.system, tr.equivalence)
				}
				if cm.demo || tr.illustrative {
					m.issue(sevWarning, codeInformation, rule.path.text, "%s %s is a demonstration table, not a published mapping: the added %s code is illustrative and must be checked before clinical use", cm.kind(), cm.id, tr.system)
				}
			}
		}
	}
	if len(added) > 0 {
		cc["coding"] = append(getArr(cc, "coding"), added...)
	}
}

// statusFrom reads mhp-migration-status codes out of a firewalled
// extension through its status map.
func statusFrom(cm *conceptMap, ext object) []string {
	if cm == nil {
		return nil
	}
	var out []string
	eachCoding(ext, func(c object) {
		trs, _ := cm.lookup(getStr(c, "system"), getStr(c, "code"))
		for _, tr := range trs {
			if !tr.none() {
				out = append(out, tr.code)
			}
		}
	})
	return out
}

// eachCoding calls fn for every object with string system and code
// (Codings) below v, skipping meta.
func eachCoding(v any, fn func(object)) {
	switch x := v.(type) {
	case object:
		if _, ok := x["system"].(string); ok {
			if _, ok := x["code"].(string); ok {
				fn(x)
			}
		}
		for k, e := range x {
			if k == "meta" {
				continue
			}
			eachCoding(e, fn)
		}
	case []any:
		for _, e := range x {
			eachCoding(e, fn)
		}
	}
}

// scanLabels adds the security labels that codes call for, and makes the
// resource class S when a firewall code says so.
func (m *mapper) scanLabels(root object) {
	eachCoding(root, func(c object) {
		sys, code := getStr(c, "system"), getStr(c, "code")
		for _, l := range m.p.labels {
			if l.System != sys {
				continue
			}
			for _, pre := range l.Prefixes {
				if strings.HasPrefix(code, pre) {
					m.addLabel(l.Label.System, l.Label.Code, l.Label.Display)
					break
				}
			}
		}
		for _, fw := range m.p.firewall {
			if fw.Action == fwLabel && fw.System == sys && fw.Code == code && (fw.Resource == "" || fw.Resource == m.typ) {
				if m.class != ClassSensitive {
					m.issue(sevInfo, codeSecurity, m.typ, "class S: %s", reasonOr(fw.Reason, "the resource reveals migration status"))
				}
				m.class = ClassSensitive
			}
		}
	})
}

func (m *mapper) addLabel(system, code, display string) {
	for _, l := range m.labels {
		if getStr(l, "system") == system && getStr(l, "code") == code {
			return
		}
	}
	m.labels = append(m.labels, coding(system, code, display))
}

var confidentialityRank = map[string]int{"U": 0, "L": 1, "M": 2, "N": 3, "R": 4, "V": 5}

// setMeta writes meta.profile (the MHP profile), meta.source (the gateway's
// name of the source) and meta.security (the source's labels, those the
// codes call for, and for class S restricted confidentiality plus
// MIGSTAT). versionId is the national server's and is dropped.
func (m *mapper) setMeta(root object, profile string) {
	meta := getObj(root, "meta")
	if meta == nil {
		meta = object{}
		root["meta"] = meta
	}
	delete(meta, "versionId")
	if profile != "" {
		meta["profile"] = []any{profile}
	} else {
		delete(meta, "profile")
	}
	if m.opts.SourceID != "" {
		meta["source"] = SourceURI(m.opts.SourceID)
	} else {
		delete(meta, "source")
	}
	if m.class == ClassSensitive {
		m.addLabel(conformance.CSSensitivity, conformance.CodeMIGSTAT, "Immigration status")
	}
	var sec []any
	conf := ""
	for _, s := range objects(meta["security"]) {
		if getStr(s, "system") == sysConfidentiality {
			if c := getStr(s, "code"); confidentialityRank[c] >= confidentialityRank[conf] || conf == "" {
				conf = c
			}
			continue
		}
		sec = append(sec, s)
	}
	if m.class == ClassSensitive && confidentialityRank[conf] < confidentialityRank["R"] {
		conf = "R"
	}
	if conf != "" {
		sec = append([]any{coding(sysConfidentiality, conf, confidentialityDisplay[conf])}, sec...)
	}
	for _, l := range m.labels {
		dup := false
		for _, s := range sec {
			so, _ := s.(object)
			if getStr(so, "system") == getStr(l, "system") && getStr(so, "code") == getStr(l, "code") {
				dup = true
			}
		}
		if !dup {
			sec = append(sec, l)
		}
	}
	if len(sec) > 0 {
		meta["security"] = sec
	} else {
		delete(meta, "security")
	}
}

var confidentialityDisplay = map[string]string{
	"U": "unrestricted", "L": "low", "M": "moderate", "N": "normal", "R": "restricted", "V": "very restricted",
}

// setID gives the output its id and returns it.
func (m *mapper) setID(root object, typ, upstream string) string {
	if upstream == "" {
		delete(root, "id")
		return ""
	}
	id := upstream
	if m.opts.ID != nil {
		id = m.opts.ID(typ, upstream)
	}
	root["id"] = id
	return id
}

// derivedLocalID is the id of a derived output when no ID function is set:
// the upstream id with a suffix, or a hash when that would be too long.
func derivedLocalID(upstream, kind string) string {
	if id := upstream + "-" + kind; r4.IsID(id) {
		return id
	}
	sum := sha256.Sum256([]byte(upstream + "/" + kind))
	return kind + "-" + hex.EncodeToString(sum[:12])
}

func (m *mapper) derivedID(typ, upstream, kind string) (outID, derivedUpstream string) {
	derivedUpstream = DerivedID(upstream, kind)
	if upstream == "" {
		return "", derivedUpstream
	}
	if m.opts.DerivedID != nil {
		return m.opts.DerivedID(typ, upstream, kind), derivedUpstream
	}
	if m.opts.ID != nil {
		return m.opts.ID(typ, derivedUpstream), derivedUpstream
	}
	return derivedLocalID(upstream, kind), derivedUpstream
}

// required fills 1..1 elements the national resource lacks with
// data-absent-reason, as IPS does for an unknown birth date.
func (m *mapper) required(root object, rp *resourcePlan) {
	for _, r := range rp.required {
		if m.sel != nil && !m.sel.has(r.name) && !m.sel.has(r.key()) {
			continue // it writes only r.key() and "_"+r.key()
		}
		if has(root, r) {
			if r.name == "birthDate" {
				m.birthDateAccuracy(root)
			}
			continue
		}
		key := r.key()
		switch r.typ {
		case "date", "dateTime", "string":
			exts := []any{dataAbsent("unknown")}
			if r.typ == "date" {
				exts = append(exts, accuracyExt("unknown"))
			}
			root["_"+key] = object{"extension": exts}
		case "HumanName":
			// A name element with an absent family name satisfies ips-pat-1
			// (family.exists()) without inventing one.
			root[key] = []any{object{"_family": object{"extension": []any{dataAbsent("unknown")}}}}
		default:
			root[key] = object{"extension": []any{dataAbsent("unknown")}}
		}
		m.issue(sevWarning, codeIncomplete, m.typ+"."+r.name, "%s.%s is required by the MHP but absent in the source; data-absent-reason added", m.typ, r.name)
	}
}

// key is the member a missing required element is written as.
func (r requiredRule) key() string {
	if r.choice {
		return r.name + strings.ToUpper(r.typ[:1]) + r.typ[1:]
	}
	return r.name
}

func has(root object, r requiredRule) bool {
	if !r.choice {
		_, a := root[r.name]
		_, b := root["_"+r.name]
		return a || b
	}
	for k := range root {
		if strings.HasPrefix(k, r.name) || strings.HasPrefix(k, "_"+r.name) {
			return true
		}
	}
	return false
}

// birthDateAccuracy adds the MHP accuracy "unknown" next to a
// data-absent-reason on a birth date that has no value.
func (m *mapper) birthDateAccuracy(root object) {
	if _, ok := root["birthDate"]; ok {
		return
	}
	under := getObj(root, "_birthDate")
	if under == nil {
		return
	}
	exts := getArr(under, "extension")
	hasDAR, hasAcc := false, false
	for _, e := range objects(exts) {
		switch getStr(e, "url") {
		case extDataAbsent:
			hasDAR = true
		case conformance.ExtDateAccuracy:
			hasAcc = true
		}
	}
	if !hasDAR {
		exts = append(exts, dataAbsent("unknown"))
		m.issue(sevWarning, codeIncomplete, "Patient.birthDate", "birth date has no value; data-absent-reason added")
	}
	if !hasAcc {
		exts = append(exts, accuracyExt("unknown"))
	}
	under["extension"] = exts
}

func accuracyExt(code string) object {
	return object{"url": conformance.ExtDateAccuracy, "valueCode": code}
}
