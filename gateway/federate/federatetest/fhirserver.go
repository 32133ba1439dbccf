package federatetest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/gateway/source"
)

// FHIRServer is a FHIR R4 server over a generated population, for tests
// of population searches: Patient searches (no parameters), and for the
// other types patient (comma-separated ids), code and vaccine-code
// (system|code tokens) and onset-date and date (ge and le prefixes, a
// partial date meaning its whole range), paged by _count with next links.
// Its CapabilityStatement declares those parameters, or none when it was
// made with declare false. It records every query.
type FHIRServer struct {
	// URL is the server's base.
	URL string

	src     *source.Bundle
	declare bool

	mu      sync.Mutex
	queries []string
}

// PopulationFHIR starts a FHIRServer over the population opts describes;
// it is closed when the test ends.
func PopulationFHIR(tb testing.TB, opts population.Options, declare bool) *FHIRServer {
	tb.Helper()
	f := &FHIRServer{src: PopulationSource(tb, opts), declare: declare}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL + "/fhir"
	return f
}

// Queries returns the queries searched so far, as "Type?query".
func (f *FHIRServer) Queries() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.queries...)
}

// searchParams are the parameters the server understands, by type.
var searchParams = map[string][]string{
	"Patient":      {"_count"},
	"Condition":    {"_count", "code", "onset-date", "patient"},
	"Immunization": {"_count", "date", "patient", "vaccine-code"},
	"Observation":  {"_count", "code", "date", "patient"},
	"Encounter":    {"_count", "date", "patient"},
}

func (f *FHIRServer) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/fhir+json")
	typ := strings.TrimPrefix(r.URL.Path, "/fhir/")
	if typ == "metadata" {
		_ = json.NewEncoder(w).Encode(f.capabilities())
		return
	}
	f.mu.Lock()
	f.queries = append(f.queries, typ+"?"+r.URL.RawQuery)
	f.mu.Unlock()
	q := r.URL.Query()
	count, _ := strconv.Atoi(q.Get("_count"))
	if count <= 0 {
		count = 50
	}
	offset, _ := strconv.Atoi(q.Get("_offset"))
	params := url.Values{}
	if p := q.Get("patient"); p != "" && typ != "Patient" {
		params.Set("patient", p)
	}
	var page []json.RawMessage
	n := 0
	errFull := errors.New("page full")
	err := f.src.Scan(context.Background(), typ, params, func(res source.Resource) error {
		if !matches(typ, res.JSON, q) {
			return nil
		}
		n++
		if n <= offset {
			return nil
		}
		if len(page) == count {
			return errFull
		}
		page = append(page, res.JSON)
		return nil
	})
	if err != nil && !errors.Is(err, errFull) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported"}]}`))
		return
	}
	entries := make([]any, 0, len(page))
	for _, raw := range page {
		entries = append(entries, map[string]any{"resource": raw, "search": map[string]any{"mode": "match"}})
	}
	b := map[string]any{"resourceType": "Bundle", "type": "searchset", "entry": entries}
	if errors.Is(err, errFull) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("_offset", strconv.Itoa(offset+count))
		b["link"] = []any{map[string]any{"relation": "next", "url": f.URL + "/" + typ + "?" + nq.Encode()}}
	}
	_ = json.NewEncoder(w).Encode(b)
}

func (f *FHIRServer) capabilities() map[string]any {
	var res []any
	for typ, names := range searchParams {
		var sps []any
		if f.declare {
			for _, n := range names {
				sps = append(sps, map[string]any{"name": n, "type": "token"})
			}
		}
		res = append(res, map[string]any{"type": typ, "searchParam": sps})
	}
	return map[string]any{"resourceType": "CapabilityStatement", "status": "active", "date": "2025-01-01", "kind": "instance",
		"fhirVersion": "4.0.1", "format": []any{"json"}, "rest": []any{map[string]any{"mode": "server", "resource": res}}}
}

// coded is what matches reads of a resource.
type coded struct {
	Code *struct {
		Coding []struct{ System, Code string }
	} `json:"code"`
	VaccineCode *struct {
		Coding []struct{ System, Code string }
	} `json:"vaccineCode"`
	Onset      string                  `json:"onsetDateTime"`
	Occurrence string                  `json:"occurrenceDateTime"`
	Effective  string                  `json:"effectiveDateTime"`
	Period     *struct{ Start string } `json:"period"`
}

// The token and date parameters matches tests.
var (
	codeParams = []string{"code", "vaccine-code"}
	dateParams = []string{"onset-date", "date"}
)

// matches applies the code and date parameters.
func matches(typ string, raw []byte, q url.Values) bool {
	if !slices.ContainsFunc(codeParams, q.Has) && !slices.ContainsFunc(dateParams, q.Has) {
		return true // nothing to test: no need to read the resource
	}
	var c coded
	_ = json.Unmarshal(raw, &c)
	for _, name := range codeParams {
		vs, ok := q[name]
		if !ok {
			continue
		}
		cc := c.Code
		if name == "vaccine-code" {
			cc = c.VaccineCode
		}
		for _, v := range vs {
			if cc == nil {
				return false
			}
			hit := false
			for _, tok := range strings.Split(v, ",") {
				for _, cd := range cc.Coding {
					if tok == cd.System+"|"+cd.Code {
						hit = true
					}
				}
			}
			if !hit {
				return false
			}
		}
	}
	for _, name := range dateParams {
		vs, ok := q[name]
		if !ok {
			continue
		}
		d := c.Onset
		switch typ {
		case "Immunization":
			d = c.Occurrence
		case "Observation":
			d = c.Effective
		case "Encounter":
			d = ""
			if c.Period != nil {
				d = c.Period.Start
			}
		}
		if d == "" {
			return false
		}
		lo, hi := dateRange(d)
		for _, v := range vs {
			switch {
			case strings.HasPrefix(v, "ge"):
				if hi < v[2:] {
					return false
				}
			case strings.HasPrefix(v, "le"):
				if lo > v[2:] {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

// dateRange gives the first and last day a FHIR date or dateTime covers,
// as YYYY-MM-DD (a month's last day taken as the 31st: a range that is
// never too narrow).
func dateRange(d string) (string, string) {
	switch len(d) {
	case 4:
		return d + "-01-01", d + "-12-31"
	case 7:
		return d + "-01", d + "-31"
	}
	if len(d) > 10 {
		d = d[:10]
	}
	return d, d
}
