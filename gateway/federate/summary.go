package federate

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/narrative"
	"github.com/migrant-health/mhg/mappings"
)

// Composition profiles a client may ask a summary in ($summary profile
// parameter): the MHP one, and the IPS one it derives from, since every
// MHP document is an IPS document.
const (
	ProfileIPSComposition = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"
)

// SummaryRequest is one $summary.
type SummaryRequest struct {
	// Patient names the patient.
	Patient PatientQuery
	// Language is the narrative language (narrative.Negotiate); a language
	// without phrases, or "", gives English.
	Language string
	// BaseURL is the FHIR base the document's fullUrls start with.
	BaseURL string
	// Profiles are claimed by the Composition besides the MHP one (the IPS
	// Composition canonical, when the client asked for it).
	Profiles []string
}

// section is one Composition section the gateway writes.
type section struct {
	key, code, display string
	required           bool
	accepts            func(*item) bool
}

func ofType(types ...string) func(*item) bool {
	return func(it *item) bool {
		for _, t := range types {
			if it.typ == t {
				return true
			}
		}
		return false
	}
}

func observationIn(category string) func(*item) bool {
	return func(it *item) bool {
		return it.typ == "Observation" && observationCategory(it.res) == category
	}
}

// observationCategory sorts Observations into the vital-signs and
// social-history sections; the rest are results.
func observationCategory(o object) string {
	for _, c := range objects(o["category"]) {
		for _, cd := range objects(c["coding"]) {
			switch getStr(cd, "code") {
			case "vital-signs", "social-history":
				return getStr(cd, "code")
			}
		}
	}
	return ""
}

// sections are the IPS sections, in document order: the three required
// ones always, the others when they have entries.
var sections = []section{
	{"section.problems", "11450-4", "Problem list - Reported", true, ofType("Condition")},
	{"section.allergies", "48765-2", "Allergies and adverse reactions Document", true, ofType("AllergyIntolerance")},
	{"section.medications", "10160-0", "History of Medication use Narrative", true, ofType("MedicationStatement", "MedicationRequest")},
	{"section.immunizations", "11369-6", "History of Immunization Narrative", false, ofType("Immunization")},
	{"section.results", "30954-2", "Relevant diagnostic tests/laboratory data Narrative", false, observationIn("")},
	{"section.procedures", "47519-4", "History of Procedures Document", false, ofType("Procedure")},
	{"section.vital-signs", "8716-3", "Vital signs", false, observationIn("vital-signs")},
	{"section.social-history", "29762-2", "Social history Narrative", false, observationIn("social-history")},
}

// Summary assembles the patient's International Patient Summary from every
// source the requester may ask, as an MHP document Bundle (R4 JSON):
// identity resolved across sources (Linker), every resource released by
// the policy, the Patient merged (mergePatients), records of the same fact
// folded into one (dupRules), every entry with a Provenance per national
// original, Bundle.meta.security at the high-water mark of the content,
// narratives in req.Language. Sources that could not contribute are named
// in an OperationOutcome entry and in every section's narrative; mapping
// loss reports go to the OperationOutcome, warnings and errors also under
// their entries. Class S data (the migration context) is never referenced
// from the Composition; it is in the Bundle only when the release phase
// allowed it, which takes the patient's explicit consent.
//
// The Result is returned with errors too, for the audit record.
func (l *Linker) Summary(ctx context.Context, req Request, sr SummaryRequest) (*Result, []byte, error) {
	ctx, span := tracer().Start(ctx, "federate.summary")
	defer span.End()
	res := &Result{}
	lk, err := l.gather(ctx, req, res, sr.Patient, summaryTypes)
	if err != nil {
		return res, nil, err
	}
	doc, err := l.assemble(req, res, lk, sr)
	if err != nil {
		return res, nil, err
	}
	span.SetAttributes(attribute.Int("mhg.count", len(res.Entries)))
	return res, doc, nil
}

// assemble builds the document Bundle.
func (l *Linker) assemble(req Request, res *Result, lk *linkage, sr SummaryRequest) ([]byte, error) {
	p := narrative.For(sr.Language)
	now := l.now().UTC()
	stamp := now.Format(time.RFC3339)
	base := strings.TrimRight(sr.BaseURL, "/")
	patientID := strings.TrimPrefix(res.Patient, "Patient/")

	// The Patient, merged from every linked record (the anchor's first).
	ordered := append([]*link{lk.anchor}, withoutLink(lk.links, lk.anchor)...)
	if !containsLink(lk.links, lk.anchor) {
		ordered = lk.links
	}
	var parts []patientPart
	patientRefs := map[string]bool{}
	patient := &item{typ: "Patient", id: patientID}
	for _, ln := range ordered {
		o, err := decodeEntry(ln.patient)
		if err != nil {
			return nil, err
		}
		parts = append(parts, patientPart{src: ln.src, id: ln.patient.ID, res: o})
		patientRefs["Patient/"+ln.patient.ID] = true
		org := origin{src: ln.src, typ: "Patient", id: ln.patient.ID}
		patient.origins = append(patient.origins, org)
		for _, is := range ReportableLoss(ln.patient.Loss) {
			patient.loss = append(patient.loss, lossNote{org, is})
		}
	}
	merged, conflicts := mergePatients(patientID, req.Requester.Country, parts, l.ids)
	merged["text"] = object{"status": "generated", "div": patientNarrative(p, merged, parts, conflicts)}
	patient.res = merged

	// Clinical records, anchor's first so that its record is kept when
	// duplicates are otherwise equal.
	var items []*item
	for _, ln := range ordered {
		for _, e := range ln.entries {
			o, err := decodeEntry(e)
			if err != nil {
				return nil, err
			}
			org := origin{src: ln.src, typ: e.Type, id: e.ID}
			it := &item{typ: e.Type, id: e.ID, res: o, origins: []origin{org}, sensitive: isSensitive(e)}
			for _, is := range ReportableLoss(e.Loss) {
				it.loss = append(it.loss, lossNote{org, is})
			}
			items = append(items, it)
		}
	}
	items, aliases := foldDuplicates(items)

	// References resolve inside the document or are cut to a display.
	inDoc := map[string]bool{"Patient/" + patientID: true}
	for _, it := range items {
		inDoc[it.typ+"/"+it.id] = true
	}
	omitted := func(typ string) string { return p.Text("reference.omitted", "type", typ) }
	patientRef := "Patient/" + patientID
	rewriteReferences(patient.res, patientRefs, patientRef, inDoc, aliases, omitted)
	for _, it := range items {
		rewriteReferences(it.res, patientRefs, patientRef, inDoc, aliases, omitted)
	}

	// Sections.
	missing := missingNote(p, res.Warnings, l.svc.byID)
	var secs []any
	placed := map[*item]bool{}
	var order []*item
	for _, s := range sections {
		var in []*item
		for _, it := range items {
			if !it.sensitive && !placed[it] && s.accepts(it) {
				in = append(in, it)
				placed[it] = true
			}
		}
		if len(in) == 0 && !s.required {
			continue
		}
		sec := object{
			"title": p.Text(s.key),
			"code":  object{"coding": []any{object{"system": systemLOINC, "code": s.code, "display": s.display}}},
			"text":  object{"status": "generated", "div": sectionNarrative(p, in, missing)},
		}
		if len(in) == 0 {
			// The reason never depends on what the policy withheld.
			sec["emptyReason"] = object{
				"coding": []any{object{"system": systemEmptyReasn, "code": "unavailable", "display": "Unavailable"}},
				"text":   p.Text("section.empty"),
			}
		} else {
			var refs []any
			for _, it := range in {
				refs = append(refs, object{"reference": it.typ + "/" + it.id})
				order = append(order, it)
			}
			sec["entry"] = refs
		}
		secs = append(secs, sec)
	}
	// Released records no section takes (the migration context, with the
	// patient's consent) travel in the Bundle outside the Composition.
	for _, it := range items {
		if !placed[it] {
			order = append(order, it)
		}
	}

	all := append([]*item{patient}, order...)
	conf, labels := highWaterMark(all)

	compID := newUUID()
	compProfiles := []any{conformance.ProfileComposition}
	for _, pr := range sr.Profiles {
		compProfiles = appendUnique(compProfiles, pr)
	}
	author := l.author
	if author == "" {
		author = p.Text("document.author")
	}
	var srcNames []origin
	for _, ln := range ordered {
		srcNames = append(srcNames, origin{src: ln.src})
	}
	comp := object{
		"resourceType": "Composition",
		"id":           compID,
		"meta":         object{"profile": compProfiles},
		"language":     p.Lang(),
		"text": object{"status": "generated", "div": div(p.Lang(),
			"<p><b>"+esc(p.Text("document.title"))+"</b></p><p>"+esc(p.Text("document.sources", "sources", sourcesText(srcNames)))+"</p>"+
				"<p>"+esc(p.Text("document.links", "links", linksText(p, ordered)))+"</p>"+missing)},
		"status":          "final",
		"type":            object{"coding": []any{object{"system": systemLOINC, "code": "60591-5", "display": "Patient summary Document"}}},
		"subject":         object{"reference": patientRef},
		"date":            stamp,
		"author":          []any{object{"display": author}},
		"title":           p.Text("document.title"),
		"confidentiality": conf,
		"section":         secs,
	}

	type entry struct {
		FullURL  string `json:"fullUrl"`
		Resource any    `json:"resource"`
	}
	entries := []entry{{"urn:uuid:" + compID, comp}}
	for _, it := range all {
		entries = append(entries, entry{base + "/" + it.typ + "/" + it.id, it.res})
	}
	for _, it := range all {
		for _, o := range it.origins {
			id, prov := l.provenance(it, o, stamp)
			entries = append(entries, entry{"urn:uuid:" + id, prov})
		}
	}
	if oo := documentOutcome(res.Warnings, l.svc.byID, conflicts, all, ordered); oo != nil {
		entries = append(entries, entry{"urn:uuid:" + newUUID(), oo})
	}

	bundleID := newUUID()
	security := []any{object{"system": systemConfidentiality, "code": conf}}
	security = append(security, labels...)
	bundle := object{
		"resourceType": "Bundle",
		"id":           bundleID,
		"meta":         object{"profile": []any{conformance.ProfileBundle}, "lastUpdated": stamp, "security": security},
		"identifier":   object{"system": systemRFC3986, "value": "urn:uuid:" + bundleID},
		"type":         "document",
		"timestamp":    stamp,
		"entry":        entries,
	}
	b, err := marshalDocument(bundle)
	if err != nil {
		return nil, fmt.Errorf("render summary: %w", err)
	}
	// The audit counts what left: every released record, from every
	// source, the folded duplicates too.
	for _, ln := range ordered {
		res.Entries = append(res.Entries, ln.patient)
		res.Entries = append(res.Entries, ln.entries...)
	}
	return b, nil
}

func withoutLink(links []*link, x *link) []*link {
	var out []*link
	for _, l := range links {
		if l != x {
			out = append(out, l)
		}
	}
	return out
}

func containsLink(links []*link, x *link) bool {
	for _, l := range links {
		if l == x {
			return true
		}
	}
	return false
}

func isSensitive(e Entry) bool {
	return resourceFacts(e.Resource).Class == mappings.ClassSensitive
}

// confidentialityRank orders v3-Confidentiality codes.
var confidentialityRank = map[string]int{"U": 0, "L": 1, "M": 2, "N": 3, "R": 4, "V": 5}

// carriedLabels are the v3-ActCode refrain and obligation policies a
// document carries on when any entry has them: whoever receives the
// document must honour them for all of it.
var carriedLabels = map[string]bool{
	"NOAUTH": true, "NOCOLLECT": true, "NODSCLCD": true, "NODSCLCDS": true, "NOINTEGRATE": true,
	"NOLIST": true, "NOMOU": true, "NOORGPOL": true, "NOPAT": true, "NOPERSISTP": true,
	"NORDSCLCD": true, "NORDSCLCDS": true, "NORDSCLW": true, "NORELINK": true, "NOREUSE": true,
	"NOVIP": true, "ORCON": true, "AUDIT": true, "DEID": true, "PSEUD": true, "ENCRYPT": true,
}

const systemActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

// highWaterMark is the highest confidentiality of the content (at least
// N, the mhp-confidentiality floor: a patient summary is never less than
// normal) and the refrain and obligation labels any entry carries.
func highWaterMark(items []*item) (string, []any) {
	best := "N"
	var labels []any
	for _, it := range items {
		for _, l := range objects(getObj(it.res, "meta")["security"]) {
			sys, code := getStr(l, "system"), getStr(l, "code")
			switch {
			case sys == systemConfidentiality:
				if r, ok := confidentialityRank[code]; ok && r > confidentialityRank[best] {
					best = code
				}
			case sys == systemActCode && carriedLabels[code]:
				labels = appendUnique(labels, object{"system": sys, "code": code})
			}
		}
	}
	return best, labels
}

// provenance renders the mhp-provenance of one national original behind a
// document entry: the target is the entry, the entity names the original
// by source and gateway id (never the national id), the policy is the
// mapping and its version. Its id is derived from target and original, so
// the same document content gives the same Provenance ids.
func (l *Linker) provenance(it *item, o origin, recorded string) (string, object) {
	sum := sha256.Sum256([]byte(it.typ + "/" + it.id + "\x00" + o.typ + "/" + o.id))
	id := uuidFrom(sum[:16])
	profile := o.src.Profile()
	version := l.svc.opts.Mapper.Version(profile)
	prov := object{
		"resourceType": "Provenance",
		"id":           id,
		"meta":         object{"profile": []any{conformance.ProfileProvenance}, "source": mappings.SourceURI(o.src.ID())},
		"target":       []any{object{"reference": it.typ + "/" + it.id}},
		"recorded":     recorded,
		"policy":       []any{mappings.MappingURI(profile, version)},
		"activity": object{"coding": []any{object{
			"system": "http://terminology.hl7.org/CodeSystem/iso-21089-lifecycle", "code": "transform", "display": "Transform"}}},
		"agent": []any{object{
			"type": object{"coding": []any{object{
				"system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type", "code": "assembler", "display": "Assembler"}}},
			"who": object{"display": "mhg mapping engine, " + profile + " mapping " + version},
		}},
		"entity": []any{object{
			"role": "source",
			"what": object{
				"type":       o.typ,
				"identifier": object{"system": mappings.SourceIdentifierSystem(o.src.ID()), "value": o.id},
				"display":    fmt.Sprintf("%s from source %s (%s), national profile %s", o.typ, o.src.ID(), o.src.Country(), profile),
			},
		}},
	}
	return id, prov
}

// documentOutcome lists what the reader must know about the document:
// sources that could not contribute (named, never the patient), values
// the sources disagree on, and what each mapping could not carry over.
func documentOutcome(warnings []Warning, byID map[string]Source, conflicts []conflict, items []*item, links []*link) object {
	var issues []any
	// How each record was linked, so that a reader can judge the merge.
	for _, ln := range links {
		issues = append(issues, object{"severity": "information", "code": "informational",
			"diagnostics": fmt.Sprintf("record of source %s (%s) linked: %s", ln.src.ID(), ln.src.Country(), ln.how.english())})
	}
	for _, w := range warnings {
		country := ""
		if s, ok := byID[w.Source]; ok {
			country = s.Country()
		}
		code, msg := "transient", "could not contribute (%s); its records are missing from this summary"
		switch w.Code {
		case "timeout":
			code = "timeout"
		case "truncated":
			code, msg = "incomplete", "had more records than the gateway reads (%s); some may be missing"
		case WarnAmbiguous:
			code, msg = "multiple-matches", "holds more than one person for the identifiers used (%s); none of its records were linked"
		}
		issues = append(issues, object{"severity": "warning", "code": code,
			"diagnostics": fmt.Sprintf("source %s (%s) "+msg, w.Source, country, w.Code)})
	}
	for _, c := range conflicts {
		var vals []string
		for _, v := range c.values {
			vals = append(vals, fmt.Sprintf("%s from %s (%s)", v.value, v.src.ID(), v.src.Country()))
		}
		issues = append(issues, object{"severity": "warning", "code": "conflict", "expression": []any{c.path},
			"diagnostics": "the sources disagree; the merged Patient keeps only what they agree on: " + strings.Join(vals, "; ")})
	}
	for _, it := range items {
		for _, l := range it.loss {
			sev := l.issue.Severity
			switch sev {
			case "fatal", "error", "warning", "information":
			default:
				sev = "information"
			}
			code := l.issue.Code
			if code == "" {
				code = "informational"
			}
			where := fmt.Sprintf("%s/%s (source %s)", l.origin.typ, l.origin.id, l.origin.src.ID())
			if l.origin.id != it.id {
				where = fmt.Sprintf("%s/%s (source %s, folded into %s/%s)", l.origin.typ, l.origin.id, l.origin.src.ID(), it.typ, it.id)
			}
			is := object{"severity": sev, "code": code, "diagnostics": where + ": " + l.issue.Message}
			if l.issue.Path != "" {
				is["expression"] = []any{l.issue.Path}
			}
			issues = append(issues, is)
		}
	}
	if len(issues) == 0 {
		return nil
	}
	return object{"resourceType": "OperationOutcome", "id": newUUID(), "issue": issues}
}

// newUUID returns a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return uuidFrom(b[:])
}

// uuidFrom formats 16 bytes as a version 4 variant 1 UUID.
func uuidFrom(b []byte) string {
	var u [16]byte
	copy(u[:], b)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// marshalDocument renders JSON without escaping '<', '>' and '&': the
// narratives are XHTML, and escaped they would be both larger and harder
// to read for whoever looks at the document.
func marshalDocument(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ReportableLoss is the part of a mapping's loss report that may go to the
// requester. Issues of type "security" say that class S data was found and
// moved to the migration context (or dropped): told to a requester the
// release phase withheld that context from, they would disclose what the
// firewall keeps back, so they are never reported.
func ReportableLoss(issues []mappings.Issue) []mappings.Issue {
	out := issues[:0:0]
	for _, is := range issues {
		if is.Code != "security" {
			out = append(out, is)
		}
	}
	return out
}
