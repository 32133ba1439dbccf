package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/source"
)

// nationalServer is a national FHIR REST server for tests: it serves the
// sample data of one built-in source over real HTTP (read, search with
// paging, metadata), counts the requests it gets, and can be told to fail.
// sourceTimeout is the per-source timeout of the tests' gateways: long
// enough that a healthy test source answers within it on a loaded machine
// under the race detector, short enough that a "slow" one (30s) is cut
// off quickly.
const sourceTimeout = 3 * time.Second

type nationalServer struct {
	*httptest.Server
	requests atomic.Int64
	// mode: "" normal, "500", "slow", "garbage", "invalid", "one-invalid"
	// (an invalid resource added to the first page of every search that
	// finds something),
	// "primitive-extensions" (a Patient's given names carry an extension
	// on the last, with null placeholders before it), "contained" (an
	// AllergyIntolerance's asserter is a contained RelatedPerson and its
	// recorder a contained Patient, which the gateway does not pass on),
	// "merged" (every Patient has an inactive record "<id>-old" with the
	// same identifiers, which the source replaced by it),
	// "throttle-first"
	// (429 with Retry-After: 1 on the first call per path, as a throttling
	// national server does), "throttle" (429 with Retry-After: 120 always)
	mode atomic.Value
	// throttled are the paths "throttle-first" has answered 429 once.
	throttled sync.Map
	// throttles counts the 429 answers.
	throttles atomic.Int64
	// slowFor is how long "slow" waits (or until the caller gives up);
	// zero means 30s, far past any source timeout the tests configure.
	slowFor time.Duration
}

func newNationalServer(t testing.TB, sample string) *nationalServer {
	t.Helper()
	b, err := source.OpenBundle(source.Options{ID: "upstream", Country: "XX", Profile: "x", Kind: source.KindBundle,
		BuiltinDir: sample, Builtin: examples.FS, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ns := &nationalServer{}
	ns.mode.Store("")
	ns.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.requests.Add(1)
		switch ns.mode.Load().(string) {
		case "500":
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		case "slow":
			d := ns.slowFor
			if d == 0 {
				d = 30 * time.Second
			}
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		case "throttle-first":
			if _, seen := ns.throttled.LoadOrStore(r.URL.Path, true); !seen {
				ns.throttles.Add(1)
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		case "throttle":
			ns.throttles.Add(1)
			w.Header().Set("Retry-After", "120")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		case "garbage":
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","gender":5`)
			return
		case "invalid":
			w.Header().Set("Content-Type", "application/fhir+json")
			fmt.Fprint(w, `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"x","gender":5}}]}`)
			return
		}
		ns.serve(w, r, b)
	}))
	t.Cleanup(ns.Close)
	return ns
}

func (ns *nationalServer) serve(w http.ResponseWriter, r *http.Request, b *source.Bundle) {
	w.Header().Set("Content-Type", "application/fhir+json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	switch {
	case len(parts) == 1 && parts[0] == "metadata":
		fmt.Fprint(w, `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
	case len(parts) == 2 && parts[0] == "Patient" && strings.HasSuffix(parts[1], "-old") && ns.mode.Load() == "merged":
		res, err := b.Read(ctx, "Patient", strings.TrimSuffix(parts[1], "-old"))
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		_, _ = w.Write(replacedRecord(res.JSON))
	case len(parts) == 2:
		res, err := b.Read(ctx, parts[0], parts[1])
		if errors.Is(err, source.ErrNotFound) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
			return
		}
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_, _ = w.Write(res.JSON)
	case len(parts) == 1:
		q := r.URL.Query()
		count, _ := strconv.Atoi(q.Get("_count"))
		offset, _ := strconv.Atoi(q.Get("_offset"))
		q.Del("_count")
		q.Del("_offset")
		found, err := b.Search(ctx, parts[0], q)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported"}]}`)
			return
		}
		if count <= 0 {
			count = 2 // small pages, so the connector's paging is exercised
		}
		end := min(offset+count, len(found))
		page := found[min(offset, end):end]
		type entry struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		}
		out := map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(found)}
		var entries []entry
		mode, _ := ns.mode.Load().(string)
		for _, res := range page {
			body := res.JSON
			switch mode {
			case "primitive-extensions":
				body = withGivenExtension(body)
			case "contained":
				body = withContainedAsserter(body)
			}
			entries = append(entries, entry{FullURL: ns.URL + "/" + res.Type + "/" + res.ID, Resource: body})
			if mode == "merged" && res.Type == "Patient" {
				entries = append(entries, entry{FullURL: ns.URL + "/Patient/" + res.ID + "-old", Resource: replacedRecord(body)})
			}
		}
		if mode == "one-invalid" && offset == 0 && len(page) > 0 {
			entries = append(entries, entry{FullURL: ns.URL + "/" + parts[0] + "/bad-1",
				Resource: json.RawMessage(`{"resourceType":"` + parts[0] + `","id":"bad-1","meta":5}`)})
		}
		out["entry"] = entries
		if end < len(found) {
			q.Set("_count", strconv.Itoa(count))
			q.Set("_offset", strconv.Itoa(end))
			out["link"] = []map[string]string{{"relation": "next", "url": ns.URL + "/" + parts[0] + "?" + q.Encode()}}
		}
		_ = json.NewEncoder(w).Encode(out)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// withGivenExtension gives the last given name of a Patient's first name
// an extension, with the null placeholders R4 JSON uses for the others.
func withGivenExtension(b []byte) []byte {
	var p map[string]any
	if json.Unmarshal(b, &p) != nil || p["resourceType"] != "Patient" {
		return b
	}
	names, _ := p["name"].([]any)
	if len(names) == 0 {
		return b
	}
	name, _ := names[0].(map[string]any)
	given, _ := name["given"].([]any)
	if len(given) == 0 {
		return b
	}
	ext := make([]any, len(given))
	ext[len(given)-1] = map[string]any{"extension": []any{map[string]any{
		"url": "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier", "valueCode": "CL"}}}
	name["_given"] = ext
	out, err := json.Marshal(p)
	if err != nil {
		return b
	}
	return out
}

// withContainedAsserter gives an AllergyIntolerance a contained
// RelatedPerson as its asserter and a contained Patient as its recorder.
func withContainedAsserter(b []byte) []byte {
	var a map[string]any
	if json.Unmarshal(b, &a) != nil || a["resourceType"] != "AllergyIntolerance" {
		return b
	}
	patient := a["patient"]
	a["contained"] = []any{
		map[string]any{"resourceType": "RelatedPerson", "id": "rp1", "patient": patient,
			"relationship": []any{map[string]any{"coding": []any{map[string]any{
				"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH", "display": "mother"}}}}},
		map[string]any{"resourceType": "Patient", "id": "cp1"},
	}
	a["asserter"] = map[string]any{"reference": "#rp1"}
	a["recorder"] = map[string]any{"reference": "#cp1", "display": "the patient"}
	out, err := json.Marshal(a)
	if err != nil {
		return b
	}
	return out
}

// replacedRecord is the inactive record a source merged into the Patient
// b: same identifiers, another name, Patient.link replaced-by b.
func replacedRecord(b []byte) []byte {
	var p map[string]any
	if json.Unmarshal(b, &p) != nil {
		return b
	}
	id, _ := p["id"].(string)
	old := map[string]any{"resourceType": "Patient", "id": id + "-old", "active": false,
		"identifier": p["identifier"], "name": []any{map[string]any{"family": "Oldrecord", "given": []any{"Merged"}}},
		"link": []any{map[string]any{"other": map[string]any{"reference": "Patient/" + id}, "type": "replaced-by"}}}
	out, err := json.Marshal(old)
	if err != nil {
		return b
	}
	return out
}
