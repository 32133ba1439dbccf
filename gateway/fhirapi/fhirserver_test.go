package fhirapi

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
)

// fhirServer is a national FHIR REST server over HTTP for the tests of
// what real servers do differently from the project's samples: ids of any
// legal length, small pages, next links that write the host another way.
// It serves reads, searches by identifier, patient and _id in pages of
// pageSize, and metadata.
type fhirServer struct {
	*httptest.Server
	resources []fhirResource
	pageSize  int
	// nextBase, when set, is the base the next links are written with
	// (another host name, another port, a path outside the base); empty
	// means the server's own base.
	nextBase string
	requests atomic.Int64
}

type fhirResource struct {
	typ, id, patient string
	json             json.RawMessage
}

func newFHIRServer(t *testing.T, pageSize int, resources ...string) *fhirServer {
	t.Helper()
	fs := &fhirServer{pageSize: pageSize}
	for _, js := range resources {
		var head struct {
			ResourceType, ID string
			Subject          struct{ Reference string }
			Patient          struct{ Reference string }
		}
		if err := json.Unmarshal([]byte(js), &head); err != nil {
			t.Fatal(err)
		}
		ref := head.Subject.Reference + head.Patient.Reference
		fs.resources = append(fs.resources, fhirResource{typ: head.ResourceType, id: head.ID,
			patient: strings.TrimPrefix(ref, "Patient/"), json: json.RawMessage(js)})
	}
	fs.Server = httptest.NewServer(http.StripPrefix("/fhir", http.HandlerFunc(fs.serve)))
	t.Cleanup(fs.Close)
	return fs
}

// base is the server's FHIR base.
func (fs *fhirServer) base() string { return fs.URL + "/fhir" }

// aliasBase is the base written with "localhost" for 127.0.0.1: the same
// server under another host name.
func (fs *fhirServer) aliasBase() string {
	return strings.Replace(fs.base(), "127.0.0.1", "localhost", 1)
}

func (fs *fhirServer) serve(w http.ResponseWriter, r *http.Request) {
	fs.requests.Add(1)
	w.Header().Set("Content-Type", "application/fhir+json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "metadata":
		fmt.Fprint(w, `{"resourceType":"CapabilityStatement","status":"active","date":"2026-01-01","kind":"instance","fhirVersion":"4.0.1","format":["json"]}`)
	case len(parts) == 2:
		for _, res := range fs.resources {
			if res.typ == parts[0] && res.id == parts[1] {
				_, _ = w.Write(res.json)
				return
			}
		}
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`)
	case len(parts) == 1:
		fs.search(w, r, parts[0])
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (fs *fhirServer) search(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	var found []fhirResource
	for _, res := range fs.resources {
		if res.typ != typ {
			continue
		}
		ok := true
		if v := q.Get("identifier"); v != "" {
			_, value, cut := strings.Cut(v, "|")
			if !cut {
				value = v
			}
			ok = strings.Contains(string(res.json), `"value":"`+value+`"`)
		}
		if v := q.Get("patient"); v != "" {
			ok = ok && res.patient == v
		}
		if v := q.Get("_id"); v != "" {
			ok = ok && res.id == v
		}
		if ok {
			found = append(found, res)
		}
	}
	offset, _ := strconv.Atoi(q.Get("_offset"))
	end := min(offset+fs.pageSize, len(found))
	type entry struct {
		FullURL  string          `json:"fullUrl"`
		Resource json.RawMessage `json:"resource"`
		Search   map[string]any  `json:"search"`
	}
	entries := []entry{}
	for _, res := range found[min(offset, end):end] {
		entries = append(entries, entry{FullURL: fs.base() + "/" + res.typ + "/" + res.id, Resource: res.json,
			Search: map[string]any{"mode": "match"}})
	}
	out := map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(found), "entry": entries}
	if end < len(found) {
		q.Set("_offset", strconv.Itoa(end))
		nb := fs.nextBase
		if nb == "" {
			nb = fs.base()
		}
		out["link"] = []map[string]string{{"relation": "next", "url": nb + "/" + typ + "?" + q.Encode()}}
	}
	_ = json.NewEncoder(w).Encode(out)
}

// realGateway is a Handler over FHIR REST sources (source.FHIR) with the
// pass-through test mapping and a policy that allows the sources of
// Germany: tokDE asks.
type realGateway struct {
	*fixture
	fed *federate.Service
}

func newRealGateway(t *testing.T, sources ...source.Options) *realGateway {
	t.Helper()
	var srcs []federate.Source
	for _, spec := range sources {
		spec.Kind = source.KindFHIR
		if spec.Country == "" {
			spec.Country = "DE"
		}
		if spec.Profile == "" {
			spec.Profile = "test"
		}
		if spec.Timeout == 0 {
			spec.Timeout = 5 * time.Second
		}
		spec.Logger = slog.New(slog.DiscardHandler)
		s, err := source.NewFHIR(spec)
		if err != nil {
			t.Fatal(err)
		}
		srcs = append(srcs, s)
	}
	ids, err := federate.NewIDCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fed, err := federate.New(federate.Options{Sources: srcs, Mapper: federatetest.Mapper{}, Decider: federatetest.AllowCountry("DE"),
		IDs: ids, SourceTimeout: 5 * time.Second, Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	au := &recordingAuditor{}
	h, err := New(Options{Federation: fed, Auditor: au, BaseURL: "http://gw.test/fhir", DefaultCount: 50, MaxCount: 100,
		Verifier: tokenVerifier{tokDE: auth.Requester{ClientID: "c", Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"}}})
	if err != nil {
		t.Fatal(err)
	}
	return &realGateway{fixture: &fixture{h: h, ids: ids, auditor: au}, fed: fed}
}

// searchOutcomeIssues returns the issues of a searchset's outcome entry.
func searchOutcomeIssues(t *testing.T, r response) []map[string]any {
	t.Helper()
	var out []map[string]any
	entries, _ := r.json["entry"].([]any)
	for _, e := range entries {
		em := e.(map[string]any)
		res := em["resource"].(map[string]any)
		if res["resourceType"] != "OperationOutcome" {
			continue
		}
		for _, is := range res["issue"].([]any) {
			out = append(out, is.(map[string]any))
		}
	}
	return out
}

// matches returns the ids of a searchset's match entries.
func matches(r response) []string {
	var out []string
	entries, _ := r.json["entry"].([]any)
	for _, e := range entries {
		em := e.(map[string]any)
		if s, _ := em["search"].(map[string]any); s["mode"] == "match" {
			out = append(out, em["resource"].(map[string]any)["id"].(string))
		}
	}
	return out
}

func patientJSON(id, passport string) string {
	return fmt.Sprintf(`{"resourceType":"Patient","id":%q,"identifier":[{"system":"http://hl7.org/fhir/sid/passport-UKR","value":%q}],"name":[{"family":"Test"}]}`, id, passport)
}

func conditionJSON(id, patient string) string {
	return fmt.Sprintf(`{"resourceType":"Condition","id":%q,"subject":{"reference":"Patient/%s"},"code":{"text":"asthma"}}`, id, patient)
}
