package federatetest

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/migrant-health/mhg/mappings"
)

// Mapper is a pass-through mapping for tests of federation: it keeps the
// resource as it is, but applies Options.ID to the resource id and to every
// "Type/id" reference, as the real engine does.
type Mapper struct {
	// Version is what Version returns; "" means "test-1".
	MappingVersion string
}

// Version returns the mapping version.
func (m Mapper) Version(string) string {
	if m.MappingVersion == "" {
		return "test-1"
	}
	return m.MappingVersion
}

// Map passes the resource through with ids rewritten.
func (m Mapper) Map(_ string, in []byte, opts mappings.Options) (mappings.Result, error) {
	var res map[string]any
	if err := json.Unmarshal(in, &res); err != nil {
		return mappings.Result{}, fmt.Errorf("%w: %v", mappings.ErrNotMappable, err)
	}
	typ, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	out := mappings.Output{Type: typ, ID: id, UpstreamID: id, Class: mappings.ClassClinical}
	if opts.ID != nil {
		out.ID = opts.ID(typ, id)
		res["id"] = out.ID
		rewrite(res, opts.ID)
	}
	b, err := json.Marshal(res)
	if err != nil {
		return mappings.Result{}, err
	}
	out.JSON = b
	return mappings.Result{Outputs: []mappings.Output{out}}, nil
}

func rewrite(v any, id func(string, string) string) {
	switch t := v.(type) {
	case map[string]any:
		for k, child := range t {
			if s, ok := child.(string); ok && k == "reference" {
				if typ, rid, ok := strings.Cut(s, "/"); ok && !strings.Contains(rid, "/") {
					t[k] = typ + "/" + id(typ, rid)
				}
				continue
			}
			rewrite(child, id)
		}
	case []any:
		for _, child := range t {
			rewrite(child, id)
		}
	}
}
