package source

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// fakeFHIR is a FHIR server over copies of the fixtures: reads by
// type and id, searches by type (optionally patient=) in pages of pageSize,
// each page with one _include and one OperationOutcome entry that a
// client must drop.
type fakeFHIR struct {
	srv      *httptest.Server
	byKey    map[string]json.RawMessage
	byType   map[string][]json.RawMessage
	pageSize int

	mu       sync.Mutex
	requests []*http.Request
	// nextOverride, when set, replaces the next link of the first page.
	nextOverride string
}

var maggioResources = sync.OnceValues(func() ([]Resource, error) {
	data, err := os.ReadFile(maggioFile)
	if err != nil {
		return nil, err
	}
	return parseFile("maggio.json", data)
})

// otherHost starts a server that only counts the calls it gets: a host a
// next link must not lead the gateway to.
func otherHost(t *testing.T) (string, *atomic.Int32) {
	t.Helper()
	calls := &atomic.Int32{}
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { calls.Add(1) }))
	t.Cleanup(other.Close)
	return other.URL, calls
}

func newFakeFHIR(t *testing.T, pageSize int) *fakeFHIR {
	t.Helper()
	f := &fakeFHIR{byKey: map[string]json.RawMessage{}, byType: map[string][]json.RawMessage{}, pageSize: pageSize}
	add := func(raw json.RawMessage) {
		h, err := readHead(raw)
		if err != nil {
			t.Fatal(err)
		}
		f.byKey[h.ResourceType+"/"+h.ID] = raw
		f.byType[h.ResourceType] = append(f.byType[h.ResourceType], raw)
	}
	// The bundle source does the urn:uuid rewriting the server would have
	// done on ingest.
	rs, err := maggioResources()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		add(r.JSON)
	}
	for _, name := range []string{"patient-example.json", "condition-example.json", "operationoutcome-example.json"} {
		add(json.RawMessage(readTestdata(t, "r4/"+name)))
	}
	f.srv = httptest.NewServer(http.StripPrefix("/fhir", http.HandlerFunc(f.serve)))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeFHIR) base() string { return f.srv.URL + "/fhir" }

func (f *fakeFHIR) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func (f *fakeFHIR) lastRequest() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests[len(f.requests)-1]
}

func (f *fakeFHIR) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/fhir+json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	switch {
	case len(parts) == 1 && parts[0] == "metadata":
		_, _ = w.Write([]byte(readTestdataRaw("r4/capabilitystatement-example.json")))
	case len(parts) == 2:
		raw, ok := f.byKey[parts[0]+"/"+parts[1]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-found"}]}`))
			return
		}
		_, _ = w.Write(raw)
	case len(parts) == 1:
		f.search(w, r, parts[0])
	default:
		w.WriteHeader(http.StatusBadRequest)
	}
}

func (f *fakeFHIR) search(w http.ResponseWriter, r *http.Request, typ string) {
	q := r.URL.Query()
	var match []json.RawMessage
	for _, raw := range f.byType[typ] {
		if p := q.Get("patient"); p != "" {
			var refs struct{ Subject, Patient struct{ Reference string } }
			_ = json.Unmarshal(raw, &refs)
			if refs.Subject.Reference != "Patient/"+p && refs.Patient.Reference != "Patient/"+p {
				continue
			}
		}
		match = append(match, raw)
	}
	page, _ := strconv.Atoi(q.Get("_page"))
	start := min(page*f.pageSize, len(match))
	end := min(start+f.pageSize, len(match))
	type entry struct {
		FullURL  string          `json:"fullUrl,omitempty"`
		Resource json.RawMessage `json:"resource"`
		Search   map[string]any  `json:"search"`
	}
	b := map[string]any{"resourceType": "Bundle", "type": "searchset", "total": len(match)}
	entries := []entry{}
	for _, raw := range match[start:end] {
		entries = append(entries, entry{Resource: raw, Search: map[string]any{"mode": "match"}})
	}
	entries = append(entries,
		entry{Resource: f.byKey["Patient/example"], Search: map[string]any{"mode": "include"}},
		entry{Resource: f.byKey["OperationOutcome/101"], Search: map[string]any{"mode": "outcome"}})
	b["entry"] = entries
	links := []map[string]string{{"relation": "self", "url": f.base() + "/" + typ + "?" + r.URL.RawQuery}}
	if end < len(match) {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("_page", strconv.Itoa(page+1))
		next := f.base() + "/" + typ + "?" + nq.Encode()
		if page == 0 && f.nextOverride != "" {
			next = f.nextOverride
		}
		links = append(links, map[string]string{"relation": "next", "url": next})
	}
	b["link"] = links
	_ = json.NewEncoder(w).Encode(b)
}

// readTestdataRaw is readTestdata for handlers, which have no *testing.T.
func readTestdataRaw(name string) string {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		panic(err)
	}
	return string(b)
}

func newTestFHIR(t *testing.T, opts Options) *FHIR {
	t.Helper()
	opts.ID, opts.Country, opts.Profile, opts.Kind = "t", "US", "us-core", KindFHIR
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	if opts.RetryBackoff == 0 {
		opts.RetryBackoff = 10 * time.Millisecond
	}
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	return s.(*FHIR)
}

func TestFHIRReadAndSearch(t *testing.T) {
	f := newFakeFHIR(t, 10)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("s3cret-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newTestFHIR(t, Options{BaseURL: f.base() + "/", Auth: Auth{Type: "bearer", TokenFile: tokenFile}})
	ctx := context.Background()
	pid := fixturePatientID(t, maggioFile)

	p, err := s.Read(ctx, "Patient", pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.Type != "Patient" || p.ID != pid {
		t.Errorf("Read = %s/%s", p.Type, p.ID)
	}
	req := f.lastRequest()
	if got := req.Header.Get("Accept"); got != "application/fhir+json" {
		t.Errorf("Accept = %q", got)
	}
	if got := req.Header.Get("Authorization"); got != "Bearer s3cret-token" {
		t.Errorf("Authorization = %q", got)
	}
	if req.URL.Path != "/Patient/"+pid {
		t.Errorf("path = %q (after the /fhir prefix)", req.URL.Path)
	}

	var want []string
	for _, e := range readFixture(t, maggioFile) {
		if e.Resource["resourceType"] == "Observation" {
			want = append(want, "Observation/"+e.Resource["id"].(string))
		}
	}
	if len(want) <= 20 {
		t.Fatalf("fixture has %d Observations; paging needs more than two pages", len(want))
	}
	before := f.calls()
	got, err := s.Search(ctx, "Observation", url.Values{"patient": {pid}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids(got), want) {
		t.Errorf("Search = %d resources %v\nwant %d %v", len(got), ids(got), len(want), want)
	}
	if pages, wantPages := f.calls()-before, (len(want)+9)/10; pages != wantPages {
		t.Errorf("fetched %d pages, want %d", pages, wantPages)
	}
	if got := f.lastRequest().URL.Query().Get("patient"); got != pid {
		t.Errorf("next page lost the search parameters: patient=%q", got)
	}

	if err := s.Check(ctx); err != nil {
		t.Errorf("Check: %v", err)
	}
	if f.lastRequest().URL.Path != "/metadata" {
		t.Errorf("Check asked %s", f.lastRequest().URL.Path)
	}
}

func TestFHIRPaging(t *testing.T) {
	pid := fixturePatientID(t, maggioFile)
	ctx := context.Background()
	params := url.Values{"patient": {pid}}
	t.Run("page bound", func(t *testing.T) {
		f := newFakeFHIR(t, 5)
		s := newTestFHIR(t, Options{BaseURL: f.base(), MaxPages: 2})
		got, err := s.Search(ctx, "Observation", params)
		if !errors.Is(err, ErrTruncated) {
			t.Fatalf("err = %v, want ErrTruncated", err)
		}
		if pe, ok := AsPartial(err); !ok || pe.Pages != 3 {
			t.Errorf("err = %v, want a PartialError saying 3 pages were read", err)
		}
		if len(got) != 15 || f.calls() != 3 {
			t.Errorf("got %d resources from %d pages, want 15 from 3 (first page + 2 next links)", len(got), f.calls())
		}
	})
	t.Run("next link on another host under the base is rebased", func(t *testing.T) {
		otherURL, otherCalls := otherHost(t)
		f := newFakeFHIR(t, 10)
		f.nextOverride = otherURL + "/fhir/Observation?_page=1&patient=" + pid
		s := newTestFHIR(t, Options{BaseURL: f.base()})
		got, err := s.Search(ctx, "Observation", params)
		if err != nil {
			t.Fatal(err)
		}
		if otherCalls.Load() != 0 {
			t.Error("the other host was contacted")
		}
		if len(got) <= 10 || f.calls() < 2 {
			t.Errorf("got %d resources from %d calls; the rebased link was not followed", len(got), f.calls())
		}
	})
	t.Run("next link outside the base on another host stops with the pages read", func(t *testing.T) {
		otherURL, otherCalls := otherHost(t)
		f := newFakeFHIR(t, 5)
		f.nextOverride = otherURL + "/elsewhere/Observation?_page=1"
		s := newTestFHIR(t, Options{BaseURL: f.base()})
		got, err := s.Search(ctx, "Observation", params)
		pe, ok := AsPartial(err)
		if !ok || !errors.Is(err, ErrNextLink) || pe.Pages != 1 {
			t.Fatalf("err = %v, want a PartialError wrapping ErrNextLink after 1 page", err)
		}
		if len(got) != 5 {
			t.Errorf("got %d resources, want the 5 of the first page", len(got))
		}
		if otherCalls.Load() != 0 {
			t.Error("the other host was contacted")
		}
		if strings.Contains(err.Error(), pid) || strings.Contains(err.Error(), otherURL) {
			t.Errorf("error holds the patient id or the link: %v", err)
		}
	})
	t.Run("relative next link", func(t *testing.T) {
		f := newFakeFHIR(t, 10)
		f.nextOverride = "Observation?_page=1&patient=" + pid
		s := newTestFHIR(t, Options{BaseURL: f.base()})
		got, err := s.Search(ctx, "Observation", params)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) <= 10 {
			t.Errorf("got %d resources; the relative link was not followed to the end", len(got))
		}
	})
	t.Run("next link to itself ends the search", func(t *testing.T) {
		f := newFakeFHIR(t, 5)
		s := newTestFHIR(t, Options{BaseURL: f.base()})
		f.nextOverride = f.base() + "/Observation?" + params.Encode()
		got, err := s.Search(ctx, "Observation", params)
		if err != nil || len(got) != 5 || f.calls() != 1 {
			t.Errorf("got %d resources from %d calls, err %v; want 5 from 1", len(got), f.calls(), err)
		}
	})
}

// scripted serves the responses of steps in turn, the last one forever,
// and counts calls.
type scripted struct {
	calls atomic.Int32
	steps []func(w http.ResponseWriter, r *http.Request)
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.calls.Add(1)) - 1
	s.steps[min(n, len(s.steps)-1)](w, r)
}

func status(code int, headers ...string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.WriteHeader(code)
		_, _ = fmt.Fprint(w, `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"Patient/secret-id"}]}`)
	}
}

func body(s string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/fhir+json")
		_, _ = fmt.Fprint(w, s)
	}
}

// hangUp closes the connection without an answer: a transport error.
func hangUp(w http.ResponseWriter, r *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

func TestFHIRStatusesAndRetries(t *testing.T) {
	patient := readTestdataRaw("r4/patient-example.json")
	ok := body(patient)
	tests := []struct {
		name      string
		retries   int
		steps     []func(http.ResponseWriter, *http.Request)
		wantErr   error
		wantCalls int32
		minDelay  time.Duration
	}{
		{name: "ok", steps: []func(http.ResponseWriter, *http.Request){ok}, wantCalls: 1},
		{name: "404", retries: 2, steps: []func(http.ResponseWriter, *http.Request){status(404)}, wantErr: ErrNotFound, wantCalls: 1},
		{name: "410", steps: []func(http.ResponseWriter, *http.Request){status(410)}, wantErr: ErrNotFound, wantCalls: 1},
		{name: "400", retries: 2, steps: []func(http.ResponseWriter, *http.Request){status(400)}, wantErr: ErrRejected, wantCalls: 1},
		{name: "401", steps: []func(http.ResponseWriter, *http.Request){status(401)}, wantErr: ErrRejected, wantCalls: 1},
		{name: "403", steps: []func(http.ResponseWriter, *http.Request){status(403)}, wantErr: ErrRejected, wantCalls: 1},
		{name: "422", steps: []func(http.ResponseWriter, *http.Request){status(422)}, wantErr: ErrRejected, wantCalls: 1},
		{name: "500 is not retried", retries: 2, steps: []func(http.ResponseWriter, *http.Request){status(500), ok}, wantErr: ErrUnavailable, wantCalls: 1},
		{name: "503 then ok", retries: 2, steps: []func(http.ResponseWriter, *http.Request){status(503), status(503), ok}, wantCalls: 3,
			// backoff 10ms then 20ms, each drawn from [d/2, d]
			minDelay: 15 * time.Millisecond},
		{name: "502 retries exhausted", retries: 1, steps: []func(http.ResponseWriter, *http.Request){status(502), status(502), ok}, wantErr: ErrUnavailable, wantCalls: 2},
		{name: "504 without retries", steps: []func(http.ResponseWriter, *http.Request){status(504), ok}, wantErr: ErrUnavailable, wantCalls: 1},
		{name: "connection error retried", retries: 1, steps: []func(http.ResponseWriter, *http.Request){hangUp, ok}, wantCalls: 2},
		{name: "429 honours Retry-After without retries", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "1"), ok}, wantCalls: 2, minDelay: time.Second},
		{name: "429 twice is waited out twice", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "1"), status(429, "Retry-After", "1"), ok}, wantCalls: 3, minDelay: 2 * time.Second},
		{name: "429 without Retry-After waits a backoff", steps: []func(http.ResponseWriter, *http.Request){status(429), ok}, wantCalls: 2, minDelay: 5 * time.Millisecond},
		{name: "503 with Retry-After is throttling", steps: []func(http.ResponseWriter, *http.Request){status(503, "Retry-After", "1"), ok}, wantCalls: 2, minDelay: time.Second},
		{name: "503 with a Retry-After date", steps: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
			status(503, "Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))(w, r)
		}, ok}, wantCalls: 2, minDelay: 500 * time.Millisecond},
		{name: "429 Retry-After past the deadline gives up at once", retries: 3, steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "120"), ok}, wantErr: ErrThrottled, wantCalls: 1},
		{name: "endless 429 ends throttled", steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "0")}, wantErr: ErrThrottled, wantCalls: maxThrottleWaits + 1},
		{name: "malformed JSON", steps: []func(http.ResponseWriter, *http.Request){body(`{"resourceType":"Patient","id":`)}, wantErr: ErrInvalidResponse, wantCalls: 1},
		{name: "invalid FHIR", steps: []func(http.ResponseWriter, *http.Request){body(readTestdataRaw("invalid/patient-gender-number.json"))}, wantErr: ErrInvalidResponse, wantCalls: 1},
		{name: "another resource type", steps: []func(http.ResponseWriter, *http.Request){body(readTestdataRaw("r4/condition-example.json"))}, wantErr: ErrInvalidResponse, wantCalls: 1},
		{name: "redirect status", steps: []func(http.ResponseWriter, *http.Request){status(304)}, wantErr: ErrInvalidResponse, wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := &scripted{steps: tc.steps}
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			s := newTestFHIR(t, Options{BaseURL: srv.URL, Retries: tc.retries, Timeout: 5 * time.Second})
			start := time.Now()
			r, err := s.Read(context.Background(), "Patient", "secret-id")
			elapsed := time.Since(start)
			if h.calls.Load() != tc.wantCalls {
				t.Errorf("server saw %d calls, want %d", h.calls.Load(), tc.wantCalls)
			}
			if elapsed < tc.minDelay {
				t.Errorf("took %v, want at least %v of waiting", elapsed, tc.minDelay)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				if r.ID != "example" {
					t.Errorf("ID = %q", r.ID)
				}
				return
			}
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "secret-id") || strings.Contains(err.Error(), "Chalmers") {
				t.Errorf("error %q holds the id or content", err)
			}
			if (tc.wantErr == ErrUnavailable || tc.wantErr == ErrThrottled) && elapsed > 2*time.Second {
				t.Errorf("giving up took %v", elapsed)
			}
		})
	}
}

func TestFHIRSearchResponses(t *testing.T) {
	patient := readTestdataRaw("r4/patient-example.json")
	invalid := readTestdataRaw("invalid/patient-gender-number.json")
	tests := []struct {
		name    string
		body    string
		want    []string
		wantErr error
		// wantInErr must appear in the error.
		wantInErr string
	}{
		{name: "matches kept, include and outcome dropped",
			body: `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + patient + `,"search":{"mode":"match"}},` +
				`{"resource":` + readTestdataRaw("r4/condition-example.json") + `,"search":{"mode":"include"}},` +
				`{"resource":` + readTestdataRaw("r4/operationoutcome-example.json") + `,"search":{"mode":"outcome"}}]}`,
			want: []string{"Patient/example"}},
		{name: "entry with a response only", body: `{"resourceType":"Bundle","type":"searchset","entry":[{"response":{"status":"200"}},{"resource":` + patient + `}]}`,
			want: []string{"Patient/example"}},
		{name: "outcome only", body: `{"resourceType":"Bundle","type":"searchset","total":0,"entry":[{"resource":` + readTestdataRaw("r4/operationoutcome-example.json") + `,"search":{"mode":"outcome"}}]}`},
		{name: "no entries", body: `{"resourceType":"Bundle","type":"searchset","total":0}`},
		{name: "bare informational OperationOutcome", body: `{"resourceType":"OperationOutcome","issue":[{"severity":"information","code":"informational"}]}`},
		{name: "bare error OperationOutcome", body: `{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing"}]}`, wantErr: ErrRejected},
		{name: "invalid entry dropped, the rest kept", body: `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + patient + `},{"resource":` + invalid + `}]}`,
			want: []string{"Patient/example"}, wantErr: ErrDropped, wantInErr: "entry 1"},
		{name: "only invalid entries", body: `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + invalid + `}]}`,
			wantErr: ErrInvalidResponse, wantInErr: "entry 0"},
		{name: "null placeholder in _given", body: `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient","id":"mila","name":[{"given":["Mila","Oksana"],"_given":[null,{"extension":[{"url":"http://example.org/x","valueString":"y"}]}]}]}}]}`,
			want: []string{"Patient/mila"}},
		{name: "entry without id", body: `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":{"resourceType":"Patient"}}]}`, wantErr: ErrInvalidResponse},
		{name: "not a bundle", body: patient, wantErr: ErrInvalidResponse},
		{name: "malformed", body: `{"resourceType":"Bundle","entry":[`, wantErr: ErrInvalidResponse},
		{name: "array", body: `[]`, wantErr: ErrInvalidResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(body(tc.body)))
			t.Cleanup(srv.Close)
			s := newTestFHIR(t, Options{BaseURL: srv.URL})
			got, err := s.Search(context.Background(), "Patient", url.Values{"identifier": {"urn:x|secret-value"}})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-value") || strings.Contains(err.Error(), "Chalmers") {
					t.Errorf("error %q holds the query or content", err)
				}
				if !strings.Contains(err.Error(), tc.wantInErr) {
					t.Errorf("error %q does not say %q", err, tc.wantInErr)
				}
				if !slices.Equal(ids(got), tc.want) {
					t.Errorf("got %v beside the error, want %v", ids(got), tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ids(got), tc.want) {
				t.Errorf("got %v, want %v", ids(got), tc.want)
			}
		})
	}
}

func TestFHIRResponseLimit(t *testing.T) {
	patient := readTestdataRaw("r4/patient-example.json")
	tests := []struct {
		name    string
		handler http.HandlerFunc
	}{
		{name: "with Content-Length", handler: body(patient)},
		{name: "chunked", handler: func(w http.ResponseWriter, r *http.Request) {
			for i := 0; i < len(patient); i += 100 {
				_, _ = w.Write([]byte(patient[i:min(i+100, len(patient))]))
				w.(http.Flusher).Flush()
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			small := newTestFHIR(t, Options{BaseURL: srv.URL, MaxResponseBytes: int64(len(patient) - 1)})
			if _, err := small.Read(context.Background(), "Patient", "example"); !errors.Is(err, ErrInvalidResponse) {
				t.Errorf("oversized: err = %v, want ErrInvalidResponse", err)
			}
			exact := newTestFHIR(t, Options{BaseURL: srv.URL, MaxResponseBytes: int64(len(patient))})
			if _, err := exact.Read(context.Background(), "Patient", "example"); err != nil {
				t.Errorf("at the limit: %v", err)
			}
		})
	}
}

func TestFHIRTimeouts(t *testing.T) {
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(3 * time.Second):
		}
	})
	srv := httptest.NewServer(slow)
	t.Cleanup(srv.Close)
	tests := []struct {
		name    string
		timeout time.Duration
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{
		{name: "source timeout", timeout: 100 * time.Millisecond, ctx: func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
			wantErr: ErrTimeout},
		{name: "caller deadline is shorter", timeout: 5 * time.Second, ctx: func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 100*time.Millisecond)
		}, wantErr: ErrTimeout},
		{name: "caller cancels", timeout: 5 * time.Second, ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}, wantErr: context.Canceled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newTestFHIR(t, Options{BaseURL: srv.URL, Timeout: tc.timeout, Retries: 2})
			ctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := s.Read(ctx, "Patient", "example")
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
	t.Run("default timeout applies", func(t *testing.T) {
		s := newTestFHIR(t, Options{BaseURL: srv.URL, Timeout: 100 * time.Millisecond})
		if _, err := s.Search(context.Background(), "Patient", nil); !errors.Is(err, ErrTimeout) {
			t.Errorf("err = %v, want ErrTimeout", err)
		}
	})
}

// A throttled source is asked to wait, not failing: however often it
// answers 429, its breaker stays closed, and a wait that does not fit the
// deadline ends in ErrThrottled with the source's Retry-After.
func TestFHIRThrottlingKeepsBreakerClosed(t *testing.T) {
	h := &scripted{steps: []func(http.ResponseWriter, *http.Request){status(429, "Retry-After", "60")}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := newTestFHIR(t, Options{BaseURL: srv.URL, Timeout: 2 * time.Second, Breaker: Breaker{Failures: 2}})
	for i := range 6 {
		_, err := s.Read(context.Background(), "Patient", "example")
		var te *ThrottledError
		if !errors.As(err, &te) || te.RetryAfter != time.Minute {
			t.Fatalf("call %d: err = %v, want a ThrottledError of 1m", i, err)
		}
		if errors.Is(err, ErrUnavailable) {
			t.Errorf("call %d: throttling reported as unavailable: %v", i, err)
		}
	}
	if s.State() != "closed" {
		t.Errorf("breaker %s after six throttled calls, want closed", s.State())
	}
	if h.calls.Load() != 6 {
		t.Errorf("source saw %d calls, want 6 (none refused by a breaker)", h.calls.Load())
	}
}

// The rate limit spaces calls out across requests: with 2 a second and a
// burst of 1, the third call waits about a second, and a call whose
// deadline cannot hold the wait is throttled without reaching the source.
func TestFHIRRateLimit(t *testing.T) {
	patient := readTestdataRaw("r4/patient-example.json")
	h := &scripted{steps: []func(http.ResponseWriter, *http.Request){body(patient)}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s := newTestFHIR(t, Options{BaseURL: srv.URL, Timeout: 10 * time.Second,
		RateLimit: RateLimit{PerSecond: 2, Burst: 1}})
	start := time.Now()
	for i := range 3 {
		if _, err := s.Read(context.Background(), "Patient", "example"); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	if el := time.Since(start); el < 900*time.Millisecond {
		t.Errorf("three calls at 2/s with burst 1 took %v, want about 1s", el)
	}
	// Use the token up, then ask with a deadline shorter than the refill.
	if _, err := s.Read(context.Background(), "Patient", "example"); err != nil {
		t.Fatal(err)
	}
	before := h.calls.Load()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := s.Read(ctx, "Patient", "example")
	if !errors.Is(err, ErrThrottled) {
		t.Fatalf("err = %v, want ErrThrottled", err)
	}
	if h.calls.Load() != before {
		t.Error("a call the rate limit held back reached the source")
	}
}

func TestFHIRBreaker(t *testing.T) {
	var mode atomic.Value // "fail", "404", "400" or "ok"
	mode.Store("fail")
	var calls atomic.Int32
	patient := readTestdataRaw("r4/patient-example.json")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		switch mode.Load() {
		case "fail":
			w.WriteHeader(http.StatusInternalServerError)
		case "404":
			w.WriteHeader(http.StatusNotFound)
		case "400":
			w.WriteHeader(http.StatusBadRequest)
		default:
			_, _ = w.Write([]byte(patient))
		}
	}))
	t.Cleanup(srv.Close)
	s := newTestFHIR(t, Options{BaseURL: srv.URL, Breaker: Breaker{Failures: 3, OpenFor: 200 * time.Millisecond}})
	ctx := context.Background()
	read := func() error { _, err := s.Read(ctx, "Patient", "example"); return err }

	mode.Store("404")
	for range 5 {
		if err := read(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if s.State() != "closed" {
		t.Fatalf("404s opened the breaker: %s", s.State())
	}
	// A request the source refuses says nothing about whether it is up.
	mode.Store("400")
	for range 5 {
		if err := read(); !errors.Is(err, ErrRejected) {
			t.Fatalf("err = %v", err)
		}
	}
	if s.State() != "closed" {
		t.Fatalf("400s opened the breaker: %s", s.State())
	}

	mode.Store("fail")
	for i := range 3 {
		if err := read(); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("failure %d: err = %v", i, err)
		}
	}
	if s.State() != "open" {
		t.Fatalf("state after 3 failures = %s, want open", s.State())
	}
	before := calls.Load()
	err := read()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "breaker") {
		t.Errorf("open breaker: err = %v", err)
	}
	if err := s.Check(ctx); !errors.Is(err, ErrUnavailable) {
		t.Errorf("Check with an open breaker: %v", err)
	}
	if calls.Load() != before {
		t.Error("the open breaker let a call through")
	}

	mode.Store("ok")
	time.Sleep(250 * time.Millisecond)
	if s.State() != "half-open" {
		t.Errorf("state after OpenFor = %s, want half-open", s.State())
	}
	if err := read(); err != nil {
		t.Fatalf("trial call: %v", err)
	}
	if s.State() != "closed" {
		t.Errorf("state after a good trial = %s, want closed", s.State())
	}

	t.Run("cancelled calls do not count", func(t *testing.T) {
		mode.Store("fail")
		for range 5 {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			_, _ = s.Read(cctx, "Patient", "example")
		}
		if s.State() != "closed" {
			t.Errorf("cancelled calls opened the breaker")
		}
	})
}

func TestFHIRAuth(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(readTestdataRaw("r4/capabilitystatement-example.json")))
	}))
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		auth    Auth
		want    string
		openErr string
	}{
		{name: "none", want: ""},
		{name: "bearer", auth: Auth{Type: "bearer", TokenFile: write("tok", "abc.def\n")}, want: "Bearer abc.def"},
		{name: "basic", auth: Auth{Type: "basic", Username: "gw", PasswordFile: write("pw", "pa:ss")},
			want: "Basic " + base64.StdEncoding.EncodeToString([]byte("gw:pa:ss"))},
		{name: "missing token file", auth: Auth{Type: "bearer", TokenFile: filepath.Join(dir, "nope")}, openErr: "token file"},
		{name: "empty token file", auth: Auth{Type: "bearer", TokenFile: write("empty", "\n")}, openErr: "empty"},
		{name: "basic without user", auth: Auth{Type: "basic", PasswordFile: write("pw2", "x")}, openErr: "username"},
		{name: "unknown type", auth: Auth{Type: "digest"}, openErr: "auth type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(Options{ID: "t", Kind: KindFHIR, BaseURL: srv.URL, Auth: tc.auth, Logger: quietLogger()})
			if tc.openErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.openErr) {
					t.Fatalf("Open err = %v, want it to mention %q", err, tc.openErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Check(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got.Load() != tc.want {
				t.Errorf("Authorization = %q, want %q", got.Load(), tc.want)
			}
		})
	}
}

func TestFHIRCheck(t *testing.T) {
	cs := readTestdataRaw("r4/capabilitystatement-example.json")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		wantErr error
	}{
		{name: "R4", handler: body(cs)},
		{name: "STU3", handler: body(strings.Replace(cs, `"fhirVersion": "4.0.0"`, `"fhirVersion": "3.0.2"`, 1)), wantErr: ErrInvalidResponse},
		{name: "not a CapabilityStatement", handler: body(readTestdataRaw("r4/patient-example.json")), wantErr: ErrInvalidResponse},
		{name: "down", handler: status(503), wantErr: ErrUnavailable},
	}
	if !strings.Contains(cs, `"fhirVersion": "4.0.0"`) {
		t.Fatal("fixture changed: no fhirVersion 4.0.0 to replace")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.handler)
			t.Cleanup(srv.Close)
			s := newTestFHIR(t, Options{BaseURL: srv.URL})
			if err := s.Check(context.Background()); !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Errorf("Check = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name string
		spec Options
		want string
	}{
		{name: "unknown kind", spec: Options{ID: "x", Kind: "ftp"}, want: "unknown kind"},
		{name: "relative base", spec: Options{ID: "x", Kind: KindFHIR, BaseURL: "fhir.example"}, want: "base URL"},
		{name: "ftp base", spec: Options{ID: "x", Kind: KindFHIR, BaseURL: "ftp://fhir.example/r4"}, want: "base URL"},
		{name: "base with query", spec: Options{ID: "x", Kind: KindFHIR, BaseURL: "https://fhir.example/r4?x=1"}, want: "query"},
		{name: "bundle without dir", spec: Options{ID: "x", Kind: KindBundle}, want: "dir"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.spec)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

// TestFHIRDefaultClient checks the client Open builds: trace context goes
// upstream, spans hold no patient id or query, redirects stay on the host.
func TestFHIRDefaultClient(t *testing.T) {
	patient := readTestdataRaw("r4/patient-example.json")
	var traceparent atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(patient)) }))
	t.Cleanup(other.Close)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		traceparent.Store(r.Header.Get("traceparent"))
		switch {
		case strings.HasPrefix(r.URL.Path, "/fhir/Patient/moved"):
			http.Redirect(w, r, "/fhir/Patient/example", http.StatusFound)
		case strings.HasPrefix(r.URL.Path, "/fhir/Patient/away"):
			http.Redirect(w, r, other.URL+"/fhir/Patient/example", http.StatusFound)
		case r.URL.Path == "/fhir/Patient":
			_, _ = w.Write([]byte(`{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + patient + `}]}`))
		default:
			_, _ = w.Write([]byte(patient))
		}
	}))
	t.Cleanup(srv.Close)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")

	s := newTestFHIR(t, Options{BaseURL: srv.URL + "/fhir"})
	if _, err := s.Read(ctx, "Patient", "secret-patient-id"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Search(ctx, "Patient", url.Values{"identifier": {"urn:x|secret-value"}}); err != nil {
		t.Fatal(err)
	}
	parent.End()
	tpHeader, _ := traceparent.Load().(string)
	if want := parent.SpanContext().TraceID().String(); !strings.Contains(tpHeader, want) {
		t.Errorf("traceparent %q does not carry trace %s", tpHeader, want)
	}
	spans := rec.Ended()
	if len(spans) < 3 {
		t.Fatalf("recorded %d spans, want the parent and two client spans", len(spans))
	}
	sawURL := false
	for _, sp := range spans {
		for _, kv := range sp.Attributes() {
			v := kv.Value.String()
			if strings.Contains(v, "secret") {
				t.Errorf("span %q attribute %s = %q holds PHI", sp.Name(), kv.Key, v)
			}
			if kv.Key == "url.full" {
				sawURL = true
				if !strings.HasPrefix(v, srv.URL+"/fhir/Patient") {
					t.Errorf("url.full = %q, want the base and resource type", v)
				}
			}
		}
	}
	if !sawURL {
		t.Error("no client span recorded url.full; the redaction is untested")
	}

	if r, err := s.Read(ctx, "Patient", "moved"); err != nil || r.ID != "example" {
		t.Errorf("same-host redirect: %v", err)
	}
	_, err := s.Read(ctx, "Patient", "away")
	if !errors.Is(err, ErrInvalidResponse) || strings.Contains(err.Error(), other.URL) {
		t.Errorf("cross-host redirect: err = %v, want a refusal without the URL", err)
	}
}

func TestRedactedURL(t *testing.T) {
	tests := []struct{ in, base, want string }{
		{"https://h/fhir/Patient/123", "/fhir", "https://h/fhir/Patient/:id"},
		{"https://h/fhir/Patient?identifier=a%7Cb", "/fhir", "https://h/fhir/Patient"},
		{"https://h/fhir/metadata", "/fhir", "https://h/fhir/metadata"},
		{"https://h/Patient/1/_history/2", "", "https://h/Patient/:id"},
		{"https://h/fhir?_getpages=abc", "/fhir", "https://h/fhir/"},
		{"https://h/fhir/secret-thing", "/fhir", "https://h/fhir/:path"},
	}
	for _, tc := range tests {
		u, _ := url.Parse(tc.in)
		if got := redactedURL(u, tc.base).String(); got != tc.want {
			t.Errorf("redactedURL(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestBackoffDelay(t *testing.T) {
	s := &FHIR{backoff: 100 * time.Millisecond, maxBackoff: 400 * time.Millisecond}
	for attempt, want := range []time.Duration{100, 200, 400, 400, 400} {
		want *= time.Millisecond
		for range 50 {
			d := s.backoffDelay(attempt)
			if d < want/2 || d > want {
				t.Fatalf("attempt %d: delay %v outside [%v, %v]", attempt, d, want/2, want)
			}
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &FHIR{now: func() time.Time { return now }}
	tests := []struct {
		header string
		want   time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(7 * time.Second).Format(http.TimeFormat), 7 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tc := range tests {
		resp := &http.Response{Header: http.Header{}}
		if tc.header != "" {
			resp.Header.Set("Retry-After", tc.header)
		}
		if got := s.retryAfter(resp); got != tc.want {
			t.Errorf("Retry-After %q = %v, want %v", tc.header, got, tc.want)
		}
	}
}
