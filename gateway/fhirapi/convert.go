package fhirapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

// A $to-mhp conversion streams: the body is spooled to a file, read once
// to count the Bundle's entries and learn their fullUrls (references
// between entries are resolved through them), then again entry by entry,
// each validated, mapped and written to a second spool file as soon as it
// is done. Memory holds one entry at a time, whatever the Bundle's size;
// every bound is checked before the first byte of the answer, so a bound
// passed is a clean 413.

// conversion is a finished $to-mhp answer, waiting in a spool file.
type conversion struct {
	// out holds the answer, size bytes.
	out  *os.File
	size int64
	// released counts the MHP resources in the answer, by type.
	released map[string]int
	// unmappable is set instead for a single resource that cannot be
	// mapped at all (422).
	unmappable *Outcome
}

func (c *conversion) close() {
	if c.out != nil {
		c.out.Close()
	}
}

// converter runs one conversion.
type converter struct {
	mapper Mapper
	limits ToMHPLimits
	// maxResource bounds what is held whole: a single resource, a
	// Parameters body, one Bundle entry, the Bundle's other members.
	maxResource int64
	profile     string
	ctx         context.Context
}

// maxNesting bounds Parameters wrapping: a Parameters body holds the input
// once, not a Parameters again.
const maxNesting = 1

func (cv *converter) run(in io.ReadSeeker, size int64) (*conversion, error) {
	return cv.runNested(in, size, 0)
}

func (cv *converter) runNested(in io.ReadSeeker, size int64, depth int) (*conversion, error) {
	if size == 0 {
		if err := cv.profileError(); err != nil {
			return nil, err
		}
		return nil, errorf(http.StatusBadRequest, "required", "send the national resource or Bundle as the body")
	}
	head, err := scanHead(in, cv.limits.MaxEntries, cv.maxResource)
	if err != nil {
		return nil, err
	}
	switch head.resourceType {
	case "Parameters":
		if depth >= maxNesting {
			return nil, errorf(http.StatusBadRequest, "not-supported", "a Parameters body holds the resource itself, not another Parameters")
		}
		body, err := readAll(in)
		if err != nil {
			return nil, err
		}
		profile, res, ok := withParameters(cv.profile, body)
		if !ok {
			return nil, errorf(http.StatusBadRequest, "structure", "the Parameters body could not be read")
		}
		cv.profile = profile
		return cv.runNested(bytes.NewReader(res), int64(len(res)), depth+1)
	case "Bundle":
		if err := cv.profileError(); err != nil {
			return nil, err
		}
		return cv.bundle(in, head)
	default:
		if err := cv.profileError(); err != nil {
			return nil, err
		}
		body, err := readAll(in)
		if err != nil {
			return nil, err
		}
		return cv.single(body)
	}
}

func readAll(in io.ReadSeeker) ([]byte, error) {
	if _, err := in.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewind the spooled body: %w", err)
	}
	return io.ReadAll(in)
}

// single converts one resource.
func (cv *converter) single(body []byte) (*conversion, error) {
	if _, err := r4.Parse(body); err != nil {
		// The parser's text may quote the document: it goes back to its
		// sender only, never to the log.
		return nil, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the input is not valid FHIR R4", Diagnostics: err.Error()}
	}
	res, err := cv.mapper.Map(cv.profile, body, mappings.Options{SourceID: opToMHP})
	if err != nil {
		oo := mappingOutcome(res.Issues)
		if len(oo.Issue) == 0 {
			oo.Issue = []Issue{{Severity: "error", Code: "not-supported", Diagnostics: "the input cannot be mapped: " + err.Error()}}
		}
		return &conversion{unmappable: &oo}, nil
	}
	w, err := cv.newWriter()
	if err != nil {
		return nil, err
	}
	if err := w.add(res); err != nil {
		w.discard()
		return nil, err
	}
	return w.finish()
}

// bundle converts a Bundle entry by entry.
func (cv *converter) bundle(in io.ReadSeeker, head bundleHead) (*conversion, error) {
	if _, err := r4.Parse(head.envelope()); err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the input is not a valid FHIR R4 Bundle", Diagnostics: err.Error()}
	}
	opts := mappings.Options{SourceID: opToMHP, ResolveReference: func(ref string) (string, bool) {
		r, ok := head.refs[ref]
		return r, ok
	}}
	w, err := cv.newWriter()
	if err != nil {
		return nil, err
	}
	bundleType := head.members["type"]
	err = eachEntry(in, func(i int, raw json.RawMessage) error {
		if i%64 == 0 && cv.ctx.Err() != nil {
			return errorf(http.StatusBadRequest, "incomplete", "the client went away")
		}
		if _, err := r4.Parse(wrapEntry(bundleType, raw)); err != nil {
			return &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the input is not a valid FHIR R4 Bundle",
				Diagnostics: fmt.Sprintf("entry %d: %v", i, err)}
		}
		var e struct {
			Resource json.RawMessage `json:"resource"`
		}
		if err := json.Unmarshal(raw, &e); err != nil || len(e.Resource) == 0 || string(e.Resource) == "null" {
			return nil
		}
		return w.add(cv.mapper.MapEntry(cv.profile, i, e.Resource, opts))
	})
	if err != nil {
		w.discard()
		return nil, err
	}
	return w.finish()
}

// wrapEntry makes a one-entry Bundle of an entry, for the R4 codec.
func wrapEntry(bundleType, entry json.RawMessage) []byte {
	b := make([]byte, 0, len(entry)+64)
	b = append(b, `{"resourceType":"Bundle","type":`...)
	b = append(b, bundleType...)
	b = append(b, `,"entry":[`...)
	b = append(b, entry...)
	return append(b, "]}"...)
}

// bundleHead is what the first reading of a body learnt.
type bundleHead struct {
	resourceType string
	// members are the top-level members other than a Bundle's entries.
	members map[string]json.RawMessage
	// entries counts a Bundle's entries; refs maps their fullUrls to
	// Type/id.
	entries int
	refs    map[string]string
}

// envelope is the Bundle without its entries, for the R4 codec.
func (h bundleHead) envelope() []byte {
	m := make(map[string]json.RawMessage, len(h.members))
	for k, v := range h.members {
		if k != "entry" {
			m[k] = v
		}
	}
	b, _ := json.Marshal(m)
	return b
}

// entryHead is what the first reading keeps of an entry.
type entryHead struct {
	FullURL  string `json:"fullUrl"`
	Resource *struct {
		ResourceType string `json:"resourceType"`
		ID           string `json:"id"`
	} `json:"resource"`
}

// errTooLarge builds the 413 for a bound passed.
func errTooLarge(format string, args ...any) *Error {
	return errorf(http.StatusRequestEntityTooLarge, "too-long", format, args...)
}

func errStructure(err error) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "structure", Message: "the input is not valid FHIR R4 JSON", Diagnostics: err.Error()}
}

// scanHead reads a body once: its resourceType and, for a Bundle whose
// resourceType comes before its entries (as FHIR servers write it), the
// entries' count and fullUrls, one entry at a time. Everything else is
// held, up to maxHeld bytes together; so is each entry.
func scanHead(r io.ReadSeeker, maxEntries int, maxHeld int64) (bundleHead, error) {
	h := bundleHead{members: map[string]json.RawMessage{}, refs: map[string]string{}}
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return h, fmt.Errorf("rewind the spooled body: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	if err := expectDelim(dec, '{'); err != nil {
		return h, err
	}
	held := int64(0)
	streamed := false // the entries were read as they came
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return h, err
		}
		if _, dup := h.members[key]; dup || (key == "entry" && streamed) {
			return h, errStructure(fmt.Errorf("member %s appears twice", strconv.Quote(key)))
		}
		if key == "entry" && h.resourceType == "Bundle" {
			if err := scanEntries(dec, &h, maxEntries, maxHeld); err != nil {
				return h, err
			}
			streamed = true
			continue
		}
		start := dec.InputOffset()
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return h, errStructure(err)
		}
		if held += dec.InputOffset() - start; held > maxHeld {
			return h, errTooLarge("the input is larger than %d bytes; only a Bundle (with resourceType before entry) may be larger", maxHeld)
		}
		h.members[key] = raw
		if key == "resourceType" {
			if err := json.Unmarshal(raw, &h.resourceType); err != nil {
				return h, errStructure(errors.New("resourceType is not a string"))
			}
		}
	}
	if err := expectDelim(dec, '}'); err != nil {
		return h, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return h, errStructure(errors.New("data after the resource"))
	}
	if h.resourceType == "" {
		return h, errStructure(errors.New("no resourceType"))
	}
	// A Bundle whose entries came before its resourceType: they are held
	// (within maxHeld) and counted now.
	if raw, ok := h.members["entry"]; ok && h.resourceType == "Bundle" {
		dec := json.NewDecoder(bytes.NewReader(raw))
		if err := scanEntries(dec, &h, maxEntries, maxHeld); err != nil {
			return h, err
		}
	}
	return h, nil
}

// scanEntries reads a Bundle's entry array: counts and fullUrls.
func scanEntries(dec *json.Decoder, h *bundleHead, maxEntries int, maxEntry int64) error {
	tok, err := dec.Token()
	if err != nil {
		return errStructure(err)
	}
	if tok == nil {
		return nil
	}
	if tok != json.Delim('[') {
		return errStructure(errors.New("entry is not an array"))
	}
	for dec.More() {
		if h.entries++; h.entries > maxEntries {
			return errTooLarge("the Bundle has more than %d entries", maxEntries)
		}
		start := dec.InputOffset()
		var e entryHead
		if err := dec.Decode(&e); err != nil {
			return errStructure(fmt.Errorf("entry %d: %w", h.entries-1, err))
		}
		if dec.InputOffset()-start > maxEntry {
			return errTooLarge("entry %d is larger than %d bytes", h.entries-1, maxEntry)
		}
		if e.FullURL != "" && e.Resource != nil && e.Resource.ResourceType != "" && e.Resource.ID != "" {
			h.refs[e.FullURL] = e.Resource.ResourceType + "/" + e.Resource.ID
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return errStructure(err)
	}
	return nil
}

// eachEntry reads a Bundle again and calls fn with each entry, in order.
func eachEntry(r io.ReadSeeker, fn func(i int, raw json.RawMessage) error) error {
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("rewind the spooled body: %w", err)
	}
	dec := json.NewDecoder(bufio.NewReaderSize(r, 64<<10))
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	for dec.More() {
		key, err := objectKey(dec)
		if err != nil {
			return err
		}
		if key != "entry" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return errStructure(err)
			}
			continue
		}
		tok, err := dec.Token()
		if err != nil {
			return errStructure(err)
		}
		if tok == nil {
			continue
		}
		for i := 0; dec.More(); i++ {
			var raw json.RawMessage
			if err := dec.Decode(&raw); err != nil {
				return errStructure(err)
			}
			if err := fn(i, raw); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil {
			return errStructure(err)
		}
	}
	return nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return errStructure(err)
	}
	if tok != d {
		return errStructure(errors.New("the input is not a JSON object"))
	}
	return nil
}

func objectKey(dec *json.Decoder) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", errStructure(err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", errStructure(errors.New("malformed object"))
	}
	return key, nil
}

// answerWriter writes the answer Bundle to a spool file as entries are
// mapped, the loss report to a second one, and keeps both under the
// output bound.
type answerWriter struct {
	max      int64
	out      *os.File
	ob       *bufio.Writer
	issues   *os.File
	ib       *bufio.Writer
	n        int64 // bytes written to both
	entries  int
	nIssues  int
	released map[string]int
}

func (cv *converter) newWriter() (*answerWriter, error) {
	out, err := spoolFile(cv.limits.SpoolDir, "out")
	if err != nil {
		return nil, err
	}
	issues, err := spoolFile(cv.limits.SpoolDir, "issues")
	if err != nil {
		out.Close()
		return nil, err
	}
	w := &answerWriter{max: cv.limits.MaxOutputBytes, out: out, ob: bufio.NewWriterSize(out, 64<<10),
		issues: issues, ib: bufio.NewWriterSize(issues, 16<<10), released: map[string]int{}}
	w.write(w.ob, `{"resourceType":"Bundle","type":"collection","timestamp":"`+now()+`"`)
	return w, nil
}

func spoolFile(dir, kind string) (*os.File, error) {
	f, err := os.CreateTemp(dir, "mhg-to-mhp-"+kind+"-*")
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "no room for the conversion", Err: err}
	}
	_ = os.Remove(f.Name())
	return f, nil
}

func (w *answerWriter) write(b *bufio.Writer, s string) {
	n, _ := b.WriteString(s)
	w.n += int64(n)
}

func (w *answerWriter) writeBytes(b *bufio.Writer, p []byte) {
	n, _ := b.Write(p)
	w.n += int64(n)
}

// add writes what mapping one resource produced.
func (w *answerWriter) add(res mappings.Result) error {
	for _, o := range res.Outputs {
		w.entrySep()
		w.write(w.ob, `{"fullUrl":`+strconv.Quote(toMHPFullURL(o.Type, o.ID))+`,"resource":`)
		w.writeBytes(w.ob, o.JSON)
		w.write(w.ob, "}")
		w.released[o.Type]++
	}
	for _, is := range res.Issues {
		if w.nIssues > 0 {
			w.write(w.ib, ",")
		}
		w.writeBytes(w.ib, mustJSON(mappingIssue(is)))
		w.nIssues++
	}
	if w.n > w.max {
		return errTooLarge("the converted answer would be larger than %d bytes", w.max)
	}
	return nil
}

func (w *answerWriter) entrySep() {
	if w.entries == 0 {
		w.write(w.ob, `,"entry":[`)
	} else {
		w.write(w.ob, ",")
	}
	w.entries++
}

// finish appends the loss report and closes the Bundle.
func (w *answerWriter) finish() (*conversion, error) {
	fail := func(err error) (*conversion, error) {
		w.discard()
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "no room for the conversion", Err: err}
	}
	if w.nIssues > 0 {
		if err := w.ib.Flush(); err != nil {
			return fail(err)
		}
		w.entrySep()
		w.write(w.ob, `{"fullUrl":"urn:mhg:to-mhp:loss-report","resource":{"resourceType":"OperationOutcome","issue":[`)
		if _, err := w.issues.Seek(0, io.SeekStart); err != nil {
			return fail(err)
		}
		if _, err := io.Copy(w.ob, w.issues); err != nil {
			return fail(err)
		}
		w.write(w.ob, "]}}")
	}
	if w.entries > 0 {
		w.write(w.ob, "]")
	}
	w.write(w.ob, "}")
	if w.n > w.max {
		w.discard()
		return nil, errTooLarge("the converted answer would be larger than %d bytes", w.max)
	}
	if err := w.ob.Flush(); err != nil {
		return fail(err)
	}
	size, err := w.out.Seek(0, io.SeekCurrent)
	if err != nil {
		return fail(err)
	}
	w.issues.Close()
	return &conversion{out: w.out, size: size, released: w.released}, nil
}

// discard drops a conversion that will not be sent.
func (w *answerWriter) discard() {
	w.out.Close()
	w.issues.Close()
}
