package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
)

// InvalidResourceError says that one resource a source holds or returned is
// not valid R4. Its message names where the resource was (file, entry index,
// page) and the element path at fault, never a value; the codec's full
// message, which may quote the resource, is only reachable through Detail.
// It wraps ErrInvalidResponse and r4.ErrInvalid.
type InvalidResourceError struct {
	// Where locates the resource: "entry 3", "file a.json entry 3",
	// "file b.ndjson line 7".
	Where string
	// Type is the resource type the entry claims, "" when unknown.
	Type string
	// Path is the element the codec objected to ("Patient.gender"), "" when
	// it could not be told safely.
	Path string
	// Detail is the codec's own error. It may quote the resource: never log
	// it.
	Detail error
}

func (e *InvalidResourceError) Error() string {
	var b strings.Builder
	b.WriteString(e.Where)
	if e.Type != "" {
		b.WriteString(" (" + e.Type + ")")
	}
	b.WriteString(": invalid R4 resource")
	if e.Path != "" {
		b.WriteString(" at " + e.Path)
	}
	return b.String()
}

// Unwrap lets errors.Is find ErrInvalidResponse and r4.ErrInvalid.
func (e *InvalidResourceError) Unwrap() []error {
	return []error{ErrInvalidResponse, e.Detail}
}

// codecPath pulls the element path out of a jsonformat error ("error at
// \"Patient.gender\": ..."). The path is built from element names, so it
// holds no patient data; anything that does not look like one is dropped.
var codecPath = regexp.MustCompile(`error at "([A-Za-z][A-Za-z0-9_.\[\]]{0,200})"`)

func safePath(err error) string {
	if err == nil {
		return ""
	}
	m := codecPath.FindStringSubmatch(err.Error())
	if m == nil {
		return ""
	}
	return m[1]
}

// validate parses raw with the R4 codec and checks that it is a resource of
// the claimed type with an id. where locates it for the error.
func validate(raw []byte, where, claimedType string) (Resource, error) {
	// What is kept is what the codec read: the forms of primitive
	// extensions it rewrites (null placeholders) never reach the layers
	// above.
	raw = r4.Normalize(raw)
	cr, err := r4.Parse(raw)
	if err != nil {
		return Resource{}, &InvalidResourceError{Where: where, Type: claimedType, Path: safePath(err), Detail: err}
	}
	typ := r4.TypeName(cr)
	if claimedType != "" && typ != claimedType {
		return Resource{}, &InvalidResourceError{Where: where, Type: claimedType,
			Detail: fmt.Errorf("%w: parsed as %s", r4.ErrInvalid, typ)}
	}
	id := r4.ID(cr)
	if id == "" {
		return Resource{}, &InvalidResourceError{Where: where, Type: typ, Path: typ + ".id",
			Detail: fmt.Errorf("%w: resource has no id", r4.ErrInvalid)}
	}
	return Resource{Type: typ, ID: id, JSON: compactJSON(raw)}, nil
}

// compactJSON returns b without insignificant whitespace, so what is held
// and passed on is no larger than it must be.
func compactJSON(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	return buf.Bytes()
}

// head is what is read of a resource before it is validated.
type head struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
}

func readHead(raw []byte) (head, error) {
	var h head
	err := json.Unmarshal(raw, &h)
	return h, err
}

// isNull tells whether a raw JSON value is absent or null.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || bytes.Equal(t, []byte("null"))
}

// parseReadBody validates the answer to a read.
func parseReadBody(body []byte, resourceType string) (Resource, error) {
	h, err := readHead(body)
	if err != nil {
		return Resource{}, fmt.Errorf("response is not a JSON object: %w", ErrInvalidResponse)
	}
	if h.ResourceType != resourceType {
		return Resource{}, fmt.Errorf("response holds %s, not %s: %w", safeTypeName(h.ResourceType), resourceType, ErrInvalidResponse)
	}
	return validate(body, "response", resourceType)
}

// safeTypeName quotes what an upstream claims is a resource type only when
// it looks like one.
func safeTypeName(t string) string {
	if resourceTypePattern.MatchString(t) {
		return t
	}
	return "something else"
}

// searchBundle is the part of a searchset Bundle the search reads; each
// entry's resource is validated on its own.
type searchBundle struct {
	ResourceType string `json:"resourceType"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
		Search   *struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
	Issue []struct {
		Severity string `json:"severity"`
	} `json:"issue"`
}

// parseSearchPage reads one page of a search answer: the valid resources of
// resourceType in match mode, the next link ("" for the last page), and
// the entries that are not valid R4 (one *InvalidResourceError each).
// Entries without a resource (batch-style entry.response only),
// OperationOutcome entries and _include results are skipped. An invalid
// entry does not sink the page: the caller serves the rest and says that
// resources were dropped (ErrDropped), so that the missing part of the
// record is not hidden.
func parseSearchPage(body []byte, resourceType string) ([]Resource, string, []error, error) {
	var b searchBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, "", nil, fmt.Errorf("response is not a JSON Bundle: %w", ErrInvalidResponse)
	}
	switch b.ResourceType {
	case "Bundle":
	case "OperationOutcome":
		// Some servers answer an empty or refused search with a bare
		// OperationOutcome and status 200.
		for _, is := range b.Issue {
			if is.Severity == "error" || is.Severity == "fatal" {
				return nil, "", nil, fmt.Errorf("search answered with an error OperationOutcome: %w", ErrRejected)
			}
		}
		return nil, "", nil, nil
	default:
		return nil, "", nil, fmt.Errorf("search answered with %s, not a Bundle: %w", safeTypeName(b.ResourceType), ErrInvalidResponse)
	}
	var out []Resource
	var dropped []error
	for i, e := range b.Entry {
		if isNull(e.Resource) {
			continue
		}
		mode := ""
		if e.Search != nil {
			mode = e.Search.Mode
		}
		if mode == "include" || mode == "outcome" {
			continue
		}
		h, err := readHead(e.Resource)
		if err != nil {
			dropped = append(dropped, &InvalidResourceError{Where: fmt.Sprintf("entry %d", i),
				Detail: fmt.Errorf("%w: entry resource is not a JSON object", r4.ErrInvalid)})
			continue
		}
		if h.ResourceType == "OperationOutcome" || h.ResourceType != resourceType {
			continue
		}
		r, err := validate(e.Resource, fmt.Sprintf("entry %d", i), resourceType)
		if err != nil {
			dropped = append(dropped, err)
			continue
		}
		out = append(out, r)
	}
	next := ""
	for _, l := range b.Link {
		if l.Relation == "next" && l.URL != "" {
			next = l.URL
			break
		}
	}
	return out, next, dropped, nil
}

// checkCapabilities accepts an R4 CapabilityStatement.
func checkCapabilities(body []byte) error {
	var cs struct {
		ResourceType string `json:"resourceType"`
		FHIRVersion  string `json:"fhirVersion"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		return fmt.Errorf("metadata is not JSON: %w", ErrInvalidResponse)
	}
	if cs.ResourceType != "CapabilityStatement" {
		return fmt.Errorf("metadata holds %s, not a CapabilityStatement: %w", safeTypeName(cs.ResourceType), ErrInvalidResponse)
	}
	if cs.FHIRVersion != "" && !strings.HasPrefix(cs.FHIRVersion, "4.0") {
		v := cs.FHIRVersion
		if !fhirVersionPattern.MatchString(v) {
			v = "another version"
		}
		return fmt.Errorf("source speaks FHIR %s, not R4: %w", v, ErrInvalidResponse)
	}
	return nil
}

var fhirVersionPattern = regexp.MustCompile(`^[0-9][0-9a-z.\-]{0,15}$`)
