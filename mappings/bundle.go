package mappings

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// MapAll maps a national resource or a whole Bundle (what $to-mhp
// receives). A Bundle's entries are mapped one by one, with references to
// their fullUrls (urn:uuid, absolute URLs) resolved to Type/id; an entry
// that cannot be mapped becomes an error issue at Bundle.entry[i] instead
// of failing the call, and the issue paths of an entry are prefixed with
// its location. Errors: ErrUnknownProfile, or ErrNotMappable when the input
// is not a JSON object (or, for a single resource, when Map fails).
func (e *Engine) MapAll(profile string, in []byte, opts Options) (Result, error) {
	if _, ok := e.plans[profile]; !ok {
		return Result{}, fmt.Errorf("%w: %q", ErrUnknownProfile, profile)
	}
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(in, &head); err != nil {
		return Result{}, fmt.Errorf("%w: input is not a JSON object: %v", ErrNotMappable, err)
	}
	if head.ResourceType != "Bundle" {
		return e.Map(profile, in, opts)
	}
	refs := map[string]string{}
	for _, en := range head.Entry {
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		if en.FullURL != "" && json.Unmarshal(en.Resource, &r) == nil && r.ResourceType != "" && r.ID != "" {
			refs[en.FullURL] = r.ResourceType + "/" + r.ID
		}
	}
	if opts.ResolveReference == nil {
		opts.ResolveReference = func(ref string) (string, bool) {
			r, ok := refs[ref]
			return r, ok
		}
	}
	var all Result
	for i, en := range head.Entry {
		if len(en.Resource) == 0 {
			continue
		}
		res := e.MapEntry(profile, i, en.Resource, opts)
		all.Outputs = append(all.Outputs, res.Outputs...)
		all.Issues = append(all.Issues, res.Issues...)
	}
	return all, nil
}

// MapEntry maps the resource of entry i of a Bundle, as MapAll does with
// each: an entry that cannot be mapped gives an error issue at
// Bundle.entry[i].resource, and the paths of its issues are prefixed with
// that location. opts.ResolveReference should resolve the Bundle's
// fullUrls (MapAll builds it from the entries; a caller streaming a Bundle
// builds it in a first pass).
func (e *Engine) MapEntry(profile string, i int, resource []byte, opts Options) Result {
	at := "Bundle.entry[" + strconv.Itoa(i) + "].resource"
	res, err := e.Map(profile, resource, opts)
	if err != nil {
		return Result{Issues: []Issue{{Severity: sevError, Code: codeNotSupported, Path: at, Message: err.Error()}}}
	}
	for j, is := range res.Issues {
		if _, rest, ok := strings.Cut(is.Path, "."); ok {
			is.Path = at + "." + rest
		} else {
			is.Path = at
		}
		res.Issues[j] = is
	}
	return res
}
