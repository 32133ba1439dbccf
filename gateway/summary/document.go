package summary

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/narrative"
	"github.com/migrant-health/mhg/mappings"
)

// ProfileIPSComposition is the IPS Composition canonical a client may ask
// a summary in ($summary profile parameter) besides the MHP one: every MHP
// document is an IPS document.
const ProfileIPSComposition = "http://hl7.org/fhir/uv/ips/StructureDefinition/Composition-uv-ips"

// WarnAmbiguous is the Warning code of a source that holds more than one
// person for the identifiers used, so none of its records were linked.
const WarnAmbiguous = "ambiguous"

// Types are the clinical types a summary is built from, in the order their
// sections appear.
var Types = []string{
	"Condition", "AllergyIntolerance", "MedicationStatement", "MedicationRequest",
	"Immunization", "Observation", "DiagnosticReport", "Procedure",
}

// Source is a national source as the document names it.
type Source struct {
	// ID and Country name the source (never the patient).
	ID      string `json:"id"`
	Country string `json:"country"`
	// Profile is the national profile its records were mapped from, and
	// MappingVersion the version of that mapping (Provenance.policy).
	Profile        string `json:"profile"`
	MappingVersion string `json:"mappingVersion"`
}

// Record is one released MHP resource of a source.
type Record struct {
	// Type and ID are its type and gateway id.
	Type string `json:"type"`
	ID   string `json:"id"`
	// Resource is the resource as R4 JSON, the policy's obligations
	// applied.
	Resource json.RawMessage `json:"resource"`
	// Loss is the part of the mapping's loss report the requester may
	// read.
	Loss []mappings.Issue `json:"loss,omitempty"`
	// Sensitive marks class S data (the migration context): it is never
	// referenced from the Composition and never folded with another
	// record.
	Sensitive bool `json:"sensitive,omitempty"`
}

// Link is one source's record of the person: the Patient and the clinical
// records the release phase allowed.
type Link struct {
	Source  Source   `json:"source"`
	Patient Record   `json:"patient"`
	Records []Record `json:"records,omitempty"`
	// LinkedBy says how the record was linked to the person; the document
	// tells the reader. Zero: the record asked for.
	LinkedBy LinkedBy `json:"linkedBy,omitempty"`
}

// How a record was linked to the person a document is about.
const (
	// LinkRequested: the record the client named (by id).
	LinkRequested = "requested"
	// LinkIdentifier: it shares an identifier that may find the person.
	LinkIdentifier = "identifier"
	// LinkMatch: a demographic match of grade certain.
	LinkMatch = "match"
)

// LinkedBy says how one record was linked: by what, with which kinds of
// identifier (registry entry ids, never values), or with which score.
type LinkedBy struct {
	// By is LinkRequested (or empty), LinkIdentifier or LinkMatch.
	By string `json:"by,omitempty"`
	// Kinds are the identifier kinds of an identifier link.
	Kinds []string `json:"kinds,omitempty"`
	// Score is the match score of a demographic link.
	Score float64 `json:"score,omitempty"`
	// Merged is set when the source had merged the person's records
	// (Patient.link replaced-by, replaces or seealso) and the record used
	// is the one it kept.
	Merged bool `json:"merged,omitempty"`
}

// Warning says a source could not contribute (timeout, unavailable,
// invalid-response, mapping, truncated, WarnAmbiguous, ...).
type Warning struct {
	Source  string `json:"source"`
	Country string `json:"country"`
	Code    string `json:"code"`
	// Pages is how many pages a search that stopped early read
	// (truncated); 0 otherwise.
	Pages int `json:"pages,omitempty"`
}

// Input is what one document is rendered from: the linked records of one
// person, as federate resolved and released them.
type Input struct {
	// Patient is the gateway id the merged Patient takes.
	Patient string `json:"patient"`
	// RequesterCountry decides which national identifiers the merged
	// Patient keeps (MHP: they pass only to the same jurisdiction).
	RequesterCountry string `json:"requesterCountry"`
	// Links are every source's record of the person, the anchor (whose
	// record is kept when duplicates are otherwise equal) first.
	Links []Link `json:"links"`
	// Warnings name the sources that could not contribute.
	Warnings []Warning `json:"warnings,omitempty"`
	// Language is the narrative language (narrative.For); a language
	// without phrases, or "", gives English.
	Language string `json:"language,omitempty"`
	// BaseURL is the FHIR base the document's fullUrls start with.
	BaseURL string `json:"baseUrl"`
	// Profiles are claimed by the Composition besides the MHP one (the
	// IPS Composition canonical, when the client asked for it).
	Profiles []string `json:"profiles,omitempty"`
}

// Identifiers is what the Patient merge needs of the identifier registry
// (mappings.IdentifierRegistry has it).
type Identifiers interface {
	// Classify names one identifier: key is the same for every form of it
	// (OID and URL systems), crosses reports whether it may leave the
	// country of the record it was found in, and ok is false when the
	// registry does not know it.
	Classify(system, value string, types []string, country string) (key string, crosses, ok bool)
}

// Options configure a Renderer.
type Options struct {
	// Identifiers classify Patient identifiers. Nil: no identifier but the
	// gateway pseudonym is known to cross a border, so a merged Patient
	// keeps national and local identifiers only from sources of the
	// requester's country.
	Identifiers Identifiers
	// Now stamps documents and Provenances. Nil: time.Now.
	Now func() time.Time
	// Author names the gateway as the document's author. Empty: "Migrant
	// Health Gateway", in the narrative language.
	Author string
	// NewID returns the ids of the Bundle, the Composition and the
	// OperationOutcome, in that order of need. Nil: random version 4
	// UUIDs.
	NewID func() string
}

// Renderer renders patient summaries. It holds no state beyond its
// options and is safe for concurrent use.
type Renderer struct {
	opts Options
}

// New returns a Renderer.
func New(opts Options) *Renderer {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = newUUID
	}
	return &Renderer{opts: opts}
}

// ErrNoLinks is returned for an Input without any linked record.
var ErrNoLinks = errors.New("summary: no linked record")

// Document renders the person's International Patient Summary as an MHP
// document Bundle (R4 JSON): the Patient merged from every linked record
// (mergePatients), records of the same fact folded into one (dupRules),
// every entry with a Provenance per national original, Bundle.meta.security
// at the high-water mark of the content, narratives in in.Language.
// Sources that could not contribute are named in an OperationOutcome entry
// and in every section's narrative; mapping loss reports go to the
// OperationOutcome, warnings and errors also under their entries. Class S
// data (the migration context) is never referenced from the Composition;
// it is in the Bundle only when it is in the Input.
func (r *Renderer) Document(in Input) ([]byte, error) {
	if len(in.Links) == 0 {
		return nil, ErrNoLinks
	}
	d := &document{r: r, in: in, p: narrative.For(in.Language), stamp: r.opts.Now().UTC().Format(time.RFC3339)}
	if err := d.mergePatient(); err != nil {
		return nil, err
	}
	if err := d.foldRecords(); err != nil {
		return nil, err
	}
	d.resolveReferences()
	d.placeSections()
	b, err := marshalDocument(d.bundle())
	if err != nil {
		return nil, fmt.Errorf("render summary: %w", err)
	}
	return b, nil
}

// document is one rendering in progress.
type document struct {
	r     *Renderer
	in    Input
	p     narrative.Phrases
	stamp string

	// patient is the merged Patient, parts the sources' records of it and
	// conflicts what they disagree on.
	patient   *item
	parts     []patientPart
	conflicts []conflict
	// patientRefs are the references that name the person in any source.
	patientRefs map[string]bool
	// items are the clinical records after folding; aliases map a folded
	// record to the one kept.
	items   []*item
	aliases map[string]string
	// sections are the Composition sections; order the entries in
	// document order (the Composition's, then records no section takes).
	sections []any
	order    []*item
	// missing is the narrative of the sources that could not contribute.
	missing string
}

func (d *document) patientRef() string { return "Patient/" + d.in.Patient }

// mergePatient merges every linked Patient into one (the anchor's first).
func (d *document) mergePatient() error {
	d.patientRefs = map[string]bool{}
	d.patient = &item{typ: "Patient", id: d.in.Patient}
	for _, ln := range d.in.Links {
		o, err := decodeObject(ln.Patient.Resource)
		if err != nil {
			return fmt.Errorf("summary: patient of source %s: %w", ln.Source.ID, err)
		}
		d.parts = append(d.parts, patientPart{src: ln.Source, id: ln.Patient.ID, res: o})
		d.patientRefs["Patient/"+ln.Patient.ID] = true
		org := origin{src: ln.Source, typ: "Patient", id: ln.Patient.ID}
		d.patient.origins = append(d.patient.origins, org)
		for _, is := range ReportableLoss(ln.Patient.Loss) {
			d.patient.loss = append(d.patient.loss, lossNote{org, is})
		}
	}
	merged, conflicts := mergePatients(d.in.Patient, d.in.RequesterCountry, d.parts, d.r.opts.Identifiers)
	merged["text"] = object{"status": "generated", "div": patientNarrative(d.p, merged, d.parts, conflicts)}
	d.patient.res, d.conflicts = merged, conflicts
	return nil
}

// foldRecords decodes the clinical records, anchor's first so that its
// record is kept when duplicates are otherwise equal, and folds records of
// the same fact into one.
func (d *document) foldRecords() error {
	var items []*item
	for _, ln := range d.in.Links {
		for _, e := range ln.Records {
			o, err := decodeObject(e.Resource)
			if err != nil {
				return fmt.Errorf("summary: %s of source %s: %w", e.Type, ln.Source.ID, err)
			}
			org := origin{src: ln.Source, typ: e.Type, id: e.ID}
			it := &item{typ: e.Type, id: e.ID, res: o, origins: []origin{org}, sensitive: e.Sensitive}
			for _, is := range ReportableLoss(e.Loss) {
				it.loss = append(it.loss, lossNote{org, is})
			}
			items = append(items, it)
		}
	}
	d.items, d.aliases = foldDuplicates(items)
	return nil
}

// resolveReferences makes references resolve inside the document or cuts
// them to a display.
func (d *document) resolveReferences() {
	inDoc := map[string]bool{d.patientRef(): true}
	for _, it := range d.items {
		inDoc[it.typ+"/"+it.id] = true
	}
	omitted := func(typ string) string { return d.p.Text("reference.omitted", "type", typ) }
	for _, it := range append([]*item{d.patient}, d.items...) {
		rewriteReferences(it.res, d.patientRefs, d.patientRef(), inDoc, d.aliases, omitted)
	}
}

// placeSections sorts the records into the IPS sections: the three
// required ones always, the others when they have entries. Released
// records no section takes (the migration context, with the patient's
// consent) travel in the Bundle outside the Composition.
func (d *document) placeSections() {
	d.missing = missingNote(d.p, d.in.Warnings)
	placed := map[*item]bool{}
	for _, s := range sections {
		var in []*item
		for _, it := range d.items {
			if !it.sensitive && !placed[it] && s.accepts(it) {
				in = append(in, it)
				placed[it] = true
			}
		}
		if len(in) == 0 && !s.required {
			continue
		}
		sec := object{
			"title": d.p.Text(s.key),
			"code":  object{"coding": []any{object{"system": systemLOINC, "code": s.code, "display": s.display}}},
			"text":  object{"status": "generated", "div": sectionNarrative(d.p, in, d.missing)},
		}
		if len(in) == 0 {
			// The reason never depends on what the policy withheld.
			sec["emptyReason"] = object{
				"coding": []any{object{"system": systemEmptyReasn, "code": "unavailable", "display": "Unavailable"}},
				"text":   d.p.Text("section.empty"),
			}
		} else {
			var refs []any
			for _, it := range in {
				refs = append(refs, object{"reference": it.typ + "/" + it.id})
				d.order = append(d.order, it)
			}
			sec["entry"] = refs
		}
		d.sections = append(d.sections, sec)
	}
	for _, it := range d.items {
		if !placed[it] {
			d.order = append(d.order, it)
		}
	}
}

// composition renders the Composition, claiming conf as its
// confidentiality.
func (d *document) composition(id, conf string) object {
	profiles := []any{conformance.ProfileComposition}
	for _, pr := range d.in.Profiles {
		profiles = appendUnique(profiles, pr)
	}
	author := d.r.opts.Author
	if author == "" {
		author = d.p.Text("document.author")
	}
	var srcNames []origin
	for _, ln := range d.in.Links {
		srcNames = append(srcNames, origin{src: ln.Source})
	}
	return object{
		"resourceType": "Composition",
		"id":           id,
		"meta":         object{"profile": profiles},
		"language":     d.p.Lang(),
		"text": object{"status": "generated", "div": div(d.p.Lang(),
			"<p><b>"+esc(d.p.Text("document.title"))+"</b></p><p>"+esc(d.p.Text("document.sources", "sources", sourcesText(srcNames)))+"</p>"+
				"<p>"+esc(d.p.Text("document.links", "links", linksText(d.p, d.in.Links)))+"</p>"+d.missing)},
		"status":          "final",
		"type":            object{"coding": []any{object{"system": systemLOINC, "code": "60591-5", "display": "Patient summary Document"}}},
		"subject":         object{"reference": d.patientRef()},
		"date":            d.stamp,
		"author":          []any{object{"display": author}},
		"title":           d.p.Text("document.title"),
		"confidentiality": conf,
		"section":         d.sections,
	}
}

// bundle renders the document Bundle: the Composition, the Patient and
// the records, a Provenance per national original, and the
// OperationOutcome when there is something to say.
func (d *document) bundle() object {
	all := append([]*item{d.patient}, d.order...)
	conf, labels := highWaterMark(all)
	bundleID, compID := d.r.opts.NewID(), d.r.opts.NewID()

	type entry struct {
		FullURL  string `json:"fullUrl"`
		Resource any    `json:"resource"`
	}
	base := strings.TrimRight(d.in.BaseURL, "/")
	entries := []entry{{"urn:uuid:" + compID, d.composition(compID, conf)}}
	for _, it := range all {
		entries = append(entries, entry{base + "/" + it.typ + "/" + it.id, it.res})
	}
	for _, it := range all {
		for _, o := range it.origins {
			id, prov := provenance(it.typ, it.id, o, d.stamp)
			entries = append(entries, entry{"urn:uuid:" + id, prov})
		}
	}
	if issues := documentIssues(d.in.Warnings, d.conflicts, all, d.in.Links); len(issues) > 0 {
		id := d.r.opts.NewID()
		entries = append(entries, entry{"urn:uuid:" + id, object{"resourceType": "OperationOutcome", "id": id, "issue": issues}})
	}

	security := []any{object{"system": systemConfidentiality, "code": conf}}
	security = append(security, labels...)
	return object{
		"resourceType": "Bundle",
		"id":           bundleID,
		"meta":         object{"profile": []any{conformance.ProfileBundle}, "lastUpdated": d.stamp, "security": security},
		"identifier":   object{"system": systemRFC3986, "value": "urn:uuid:" + bundleID},
		"type":         "document",
		"timestamp":    d.stamp,
		"entry":        entries,
	}
}

// Provenance renders the mhp-provenance of one released record (its
// national original, named by source and gateway id), recorded at t: what
// Patient/$everything gives beside every entry.
func Provenance(rec Record, src Source, t time.Time) ([]byte, error) {
	_, prov := provenance(rec.Type, rec.ID, origin{src: src, typ: rec.Type, id: rec.ID}, t.UTC().Format(time.RFC3339))
	b, err := marshalDocument(prov)
	if err != nil {
		return nil, fmt.Errorf("provenance: %w", err)
	}
	return b, nil
}

// provenance renders the mhp-provenance of one national original behind a
// document entry: the target is the entry, the entity names the original
// by source and gateway id (never the national id), the policy is the
// mapping and its version. Its id is derived from target and original, so
// the same document content gives the same Provenance ids.
func provenance(typ, id string, o origin, recorded string) (string, object) {
	sum := sha256.Sum256([]byte(typ + "/" + id + "\x00" + o.typ + "/" + o.id))
	provID := uuidFrom(sum[:16])
	profile, version := o.src.Profile, o.src.MappingVersion
	prov := object{
		"resourceType": "Provenance",
		"id":           provID,
		"meta":         object{"profile": []any{conformance.ProfileProvenance}, "source": mappings.SourceURI(o.src.ID)},
		"target":       []any{object{"reference": typ + "/" + id}},
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
				"identifier": object{"system": mappings.SourceIdentifierSystem(o.src.ID), "value": o.id},
				"display":    fmt.Sprintf("%s from source %s (%s), national profile %s", o.typ, o.src.ID, o.src.Country, profile),
			},
		}},
	}
	return provID, prov
}

// documentIssues lists what the reader must know about the document:
// sources that could not contribute (named, never the patient), values
// the sources disagree on, and what each mapping could not carry over.
func documentIssues(warnings []Warning, conflicts []conflict, items []*item, links []Link) []any {
	var issues []any
	// How each record was linked, so that a reader can judge the merge.
	for _, ln := range links {
		severity := "information"
		if ln.LinkedBy.Merged {
			// The reader should know that another record of the source
			// was folded into this one.
			severity = "warning"
		}
		issues = append(issues, object{"severity": severity, "code": "informational",
			"diagnostics": fmt.Sprintf("record of source %s (%s) linked: %s", ln.Source.ID, ln.Source.Country, ln.LinkedBy.english())})
	}
	for _, w := range warnings {
		code, msg := "transient", "could not contribute (%s); its records are missing from this summary"
		switch w.Code {
		case "timeout":
			code = "timeout"
		case "truncated":
			code, msg = "incomplete", "had more records than the gateway reads (%s"+pagesRead(w.Pages)+"); some may be missing"
		case "next-link":
			code, msg = "incomplete", "gave a next page link that leads away from it (%s"+pagesRead(w.Pages)+"); some records may be missing"
		case WarnAmbiguous:
			code, msg = "multiple-matches", "holds more than one person for the identifiers used (%s); none of its records were linked"
		}
		issues = append(issues, object{"severity": "warning", "code": code,
			"diagnostics": fmt.Sprintf("source %s (%s) "+msg, w.Source, w.Country, w.Code)})
	}
	for _, c := range conflicts {
		var vals []string
		for _, v := range c.values {
			vals = append(vals, fmt.Sprintf("%s from %s (%s)", v.value, v.src.ID, v.src.Country))
		}
		issues = append(issues, object{"severity": "warning", "code": "conflict", "expression": []any{c.path},
			"diagnostics": "the sources disagree; the merged Patient keeps only what they agree on: " + strings.Join(vals, "; ")})
	}
	for _, it := range items {
		for _, l := range it.loss {
			issues = append(issues, lossIssue(it, l))
		}
	}
	return issues
}

// lossIssue renders one mapping loss note as an OperationOutcome issue
// naming the original (and the record it was folded into).
func lossIssue(it *item, l lossNote) object {
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
	where := fmt.Sprintf("%s/%s (source %s)", l.origin.typ, l.origin.id, l.origin.src.ID)
	if l.origin.id != it.id {
		where = fmt.Sprintf("%s/%s (source %s, folded into %s/%s)", l.origin.typ, l.origin.id, l.origin.src.ID, it.typ, it.id)
	}
	is := object{"severity": sev, "code": code, "diagnostics": where + ": " + l.issue.Message}
	if l.issue.Path != "" {
		is["expression"] = []any{l.issue.Path}
	}
	return is
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

// pagesRead says how many pages a search that stopped early read, or ""
// when that is not known.
func pagesRead(n int) string {
	switch {
	case n == 1:
		return " after 1 page"
	case n > 1:
		return fmt.Sprintf(" after %d pages", n)
	}
	return ""
}
