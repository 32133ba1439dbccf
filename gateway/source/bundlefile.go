package source

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
)

// fileBundle is the part of a Bundle file the loader reads; each entry's
// resource is validated on its own once its references are rewritten.
type fileBundle struct {
	Entry []struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   *struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

// parseFile reads one file of a bundle source: name ending ".ndjson" holds
// one resource a line, any other holds a Bundle (of any type) or a single
// resource. Every resource comes back validated, compacted, with the
// Bundle's fullUrl references rewritten to Type/id. The first invalid
// resource fails the file; errors name the file and the entry index or line,
// never content.
func parseFile(name string, data []byte) ([]Resource, error) {
	if strings.HasSuffix(name, ".ndjson") {
		return parseNDJSON(name, data)
	}
	h, err := readHead(data)
	if err != nil {
		return nil, fmt.Errorf("file %s: not a JSON object: %w", name, ErrInvalidResponse)
	}
	if h.ResourceType != "Bundle" {
		r, err := validate(data, "file "+name, h.ResourceType)
		if err != nil {
			return nil, err
		}
		return []Resource{r}, nil
	}
	return parseBundle(name, data)
}

func parseNDJSON(name string, data []byte) ([]Resource, error) {
	var out []Resource
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		where := fmt.Sprintf("file %s line %d", name, n)
		h, err := readHead(line)
		if err != nil {
			return nil, &InvalidResourceError{Where: where, Detail: fmt.Errorf("%w: not a JSON object", r4.ErrInvalid)}
		}
		r, err := validate(line, where, h.ResourceType)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func parseBundle(name string, data []byte) ([]Resource, error) {
	var b fileBundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("file %s: not a readable Bundle: %w", name, ErrInvalidResponse)
	}
	type pending struct {
		index  int
		raw    []byte
		typ    string
		id     string
		needID bool
	}
	entries := make([]pending, 0, len(b.Entry))
	// fullUrl -> JSON string "Type/id", known before any entry is rewritten
	// because references point forwards as often as backwards.
	refs := make(map[string][]byte, len(b.Entry))
	for i, e := range b.Entry {
		if isNull(e.Resource) {
			continue // a transaction-response or delete entry: nothing to serve
		}
		if e.Search != nil && e.Search.Mode == "outcome" {
			continue
		}
		where := fmt.Sprintf("file %s entry %d", name, i)
		h, err := readHead(e.Resource)
		if err != nil {
			return nil, &InvalidResourceError{Where: where, Detail: fmt.Errorf("%w: not a JSON object", r4.ErrInvalid)}
		}
		if !resourceTypePattern.MatchString(h.ResourceType) {
			return nil, &InvalidResourceError{Where: where, Detail: fmt.Errorf("%w: no resourceType", r4.ErrInvalid)}
		}
		p := pending{index: i, raw: e.Resource, typ: h.ResourceType, id: h.ID}
		if p.id == "" {
			p.id, p.needID = idFromFullURL(e.FullURL, h.ResourceType), true
			if p.id == "" {
				return nil, &InvalidResourceError{Where: where, Type: h.ResourceType, Path: h.ResourceType + ".id",
					Detail: fmt.Errorf("%w: entry has no id and no fullUrl to take one from", r4.ErrInvalid)}
			}
		}
		if e.FullURL != "" {
			ref, _ := json.Marshal(p.typ + "/" + p.id)
			refs[e.FullURL] = ref
		}
		entries = append(entries, p)
	}
	out := make([]Resource, 0, len(entries))
	for _, p := range entries {
		raw := rewriteReferences(p.raw, refs)
		if p.needID {
			raw = insertID(raw, p.id)
		}
		r, err := validate(raw, fmt.Sprintf("file %s entry %d", name, p.index), p.typ)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// idFromFullURL takes a resource's id from its entry's fullUrl: the uuid of
// urn:uuid:<uuid>, or the last segment of an absolute [base]/Type/id URL.
func idFromFullURL(fullURL, resourceType string) string {
	if rest, ok := strings.CutPrefix(fullURL, "urn:uuid:"); ok {
		if fhirIDPattern.MatchString(rest) {
			return rest
		}
		return ""
	}
	u, err := url.Parse(fullURL)
	if err != nil || !u.IsAbs() {
		return ""
	}
	segs := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(segs) >= 4 && segs[len(segs)-2] == "_history" {
		segs = segs[:len(segs)-2]
	}
	if len(segs) >= 2 && segs[len(segs)-2] == resourceType && fhirIDPattern.MatchString(segs[len(segs)-1]) {
		return segs[len(segs)-1]
	}
	return ""
}

// insertID adds "id" as the first member of the JSON object raw.
func insertID(raw []byte, id string) []byte {
	t := bytes.TrimLeft(raw, " \t\r\n")
	if len(t) == 0 || t[0] != '{' {
		return raw
	}
	q, _ := json.Marshal(id)
	rest := t[1:]
	out := make([]byte, 0, len(raw)+len(q)+8)
	out = append(out, `{"id":`...)
	out = append(out, q...)
	if r := bytes.TrimLeft(rest, " \t\r\n"); len(r) == 0 || r[0] != '}' {
		out = append(out, ',')
	}
	return append(out, rest...)
}

var referenceKey = []byte(`"reference"`)

// rewriteReferences replaces the value of every "reference" member whose
// value is a key of refs (a fullUrl of the same Bundle) with the mapped
// JSON string. It works on the bytes, so member order, numbers and narrative
// stay exactly as they were. In valid JSON an unescaped `"reference"`
// followed by a colon can only be an object key; on invalid JSON the result
// is invalid too and the codec rejects it.
func rewriteReferences(raw []byte, refs map[string][]byte) []byte {
	if len(refs) == 0 {
		return raw
	}
	var out []byte // nil until the first replacement
	last := 0
	pos := 0
	for {
		i := bytes.Index(raw[pos:], referenceKey)
		if i < 0 {
			break
		}
		j := pos + i + len(referenceKey)
		pos = j
		j = skipSpace(raw, j)
		if j >= len(raw) || raw[j] != ':' {
			continue
		}
		j = skipSpace(raw, j+1)
		if j >= len(raw) || raw[j] != '"' {
			continue
		}
		end := stringEnd(raw, j)
		if end < 0 {
			break
		}
		val := raw[j+1 : end]
		if bytes.IndexByte(val, '\\') >= 0 {
			var s string
			if json.Unmarshal(raw[j:end+1], &s) != nil {
				pos = end + 1
				continue
			}
			val = []byte(s)
		}
		if rep, ok := refs[string(val)]; ok {
			if out == nil {
				out = make([]byte, 0, len(raw))
			}
			out = append(out, raw[last:j]...)
			out = append(out, rep...)
			last = end + 1
		}
		pos = end + 1
	}
	if out == nil {
		return raw
	}
	return append(out, raw[last:]...)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index of the quote closing the JSON string that
// opens at b[start], or -1.
func stringEnd(b []byte, start int) int {
	for i := start + 1; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}
