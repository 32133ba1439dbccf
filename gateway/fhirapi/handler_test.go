package fhirapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
)

// tokenVerifier accepts the tokens it knows.
type tokenVerifier map[string]auth.Requester

func (v tokenVerifier) Verify(_ context.Context, tok string) (auth.Requester, error) {
	if r, ok := v[tok]; ok {
		return r, nil
	}
	return auth.Requester{}, fmt.Errorf("%w: unknown test token", auth.ErrInvalidToken)
}

// recordingAuditor keeps entries and can be made to fail.
type recordingAuditor struct {
	mu      sync.Mutex
	entries []audit.Entry
	fail    bool
}

func (a *recordingAuditor) Record(_ context.Context, e audit.Entry) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail {
		return "", errors.New("disk full")
	}
	a.entries = append(a.entries, e)
	return fmt.Sprint(len(a.entries)), nil
}

func (a *recordingAuditor) last(t *testing.T) audit.Entry {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.entries) == 0 {
		t.Fatal("no audit entry recorded")
	}
	return a.entries[len(a.entries)-1]
}

type fixture struct {
	h       *Handler
	ids     *federate.IDCodec
	auditor *recordingAuditor
	de, nl  *federatetest.Source
}

const (
	tokDE     = "token-de"
	tokNoPurp = "token-nopurpose"
)

func newFixture(t *testing.T, patients int) *fixture {
	t.Helper()
	var deRes []source.Resource
	for i := range patients {
		deRes = append(deRes, federatetest.Resource(t, fmt.Sprintf(
			`{"resourceType":"Patient","id":"p%d","identifier":[{"system":"urn:test:passport","value":"SAME"}],"name":[{"family":"Doe%d"}],"birthDate":"1980-01-0%d"}`, i, i, i%9+1)))
	}
	deRes = append(deRes,
		federatetest.Resource(t, `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p0"},"code":{"text":"asthma"}}`),
		federatetest.Resource(t, `{"resourceType":"Condition","id":"c2","subject":{"reference":"Patient/p0"},"code":{"text":"hidden"},"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"PSY"}]}}`),
	)
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: deRes}
	nl := &federatetest.Source{SourceID: "nl", SourceCountry: "NL", Resources: deRes[:1]}
	dec := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		if in.Requester.PurposeOfUse == "" {
			return authz.Decision{Reasons: []string{"purpose.missing"}}, nil
		}
		if in.Source.Country != in.Requester.Country {
			return authz.Decision{Reasons: []string{"agreement.none"}}, nil
		}
		if in.Resource != nil {
			for _, l := range in.Resource.Security {
				if l.Code == "PSY" {
					return authz.Decision{Reasons: []string{"label.psy"}}, nil
				}
			}
		}
		return authz.Decision{Allow: true, Reasons: []string{"domestic.treat"}, ID: "dec-1", Revision: "rev-1"}, nil
	}}
	eng := federatetest.Mapper{}
	ids, err := federate.NewIDCodec([]byte(strings.Repeat("i", 32)))
	if err != nil {
		t.Fatal(err)
	}
	fed, err := federate.New(federate.Options{Sources: []federate.Source{de, nl}, Mapper: eng, Decider: dec, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	au := &recordingAuditor{}
	h, err := New(Options{
		Federation: fed, Auditor: au, BaseURL: "http://gw.test/fhir", DefaultCount: 2, MaxCount: 10,
		MaxBodyBytes: 1024, MaxHeaderBytes: 2048,
		Verifier: tokenVerifier{
			tokDE:     {ClientID: "c", Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"},
			tokNoPurp: {ClientID: "c", Country: "DE", Role: "clinician"},
		},
		Checks: []Check{
			{Name: "policy", Essential: true, Fn: func(context.Context) error { return nil }},
			{Name: "source:x", Fn: func(context.Context) error { return errors.New("down") }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, ids: ids, auditor: au, de: de, nl: nl}
}

type response struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (f *fixture) do(t *testing.T, method, target, token string, hdr ...string) response {
	t.Helper()
	var body io.Reader
	if method == "POST" {
		body = strings.NewReader("{}")
	}
	r := httptest.NewRequest(method, target, body)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Add(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	resp := response{status: w.Code, header: w.Header(), body: w.Body.Bytes()}
	_ = json.Unmarshal(resp.body, &resp.json)
	return resp
}

// fhirJSON asserts that the body is valid R4 (google/fhir/go) with the FHIR
// content type.
func fhirJSON(t *testing.T, r response) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != contentType {
		t.Fatalf("Content-Type %q", ct)
	}
	if _, err := r4.Parse(r.body); err != nil {
		t.Fatalf("response is not valid R4: %v\n%s", err, r.body)
	}
}

func outcome(t *testing.T, r response, status int, code string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	fhirJSON(t, r)
	if r.json["resourceType"] != "OperationOutcome" {
		t.Fatalf("want an OperationOutcome, got %s", r.body)
	}
	issue := r.json["issue"].([]any)[0].(map[string]any)
	if issue["code"] != code {
		t.Fatalf("issue code %v, want %s: %s", issue["code"], code, r.body)
	}
}

func TestErrorsAreOperationOutcomes(t *testing.T) {
	f := newFixture(t, 1)
	pid, _ := f.ids.Encode("de", "Patient", "p0")
	nlPid, _ := f.ids.Encode("nl", "Patient", "p0")
	tests := []struct {
		name, method, target, token string
		hdr                         []string
		status                      int
		code                        string
	}{
		{"no token", "GET", "/fhir/Patient?identifier=x", "", nil, 401, "login"},
		{"forged token", "GET", "/fhir/Patient?identifier=x", "forged", nil, 401, "login"},
		{"two auth headers", "GET", "/fhir/Patient?identifier=x", tokDE, []string{"Authorization", "Bearer other"}, 401, "login"},
		{"unknown type", "GET", "/fhir/Spaceship?patient=" + pid, tokDE, nil, 404, "not-supported"},
		{"unserved type", "GET", "/fhir/Encounter?patient=" + pid, tokDE, nil, 404, "not-supported"},
		{"malformed type", "GET", "/fhir/patient", tokDE, nil, 404, "not-supported"},
		{"invalid id", "GET", "/fhir/Patient/bad_id!", tokDE, nil, 400, "invalid"},
		{"unknown id", "GET", "/fhir/Patient/de.AAAAAAAAAAAAAAAAAAAAAAAA", tokDE, nil, 404, "not-found"},
		{"bad count", "GET", "/fhir/Patient?identifier=x&_count=many", tokDE, nil, 400, "value"},
		{"patient search without identifier", "GET", "/fhir/Patient", tokDE, nil, 400, "required"},
		{"clinical search without patient", "GET", "/fhir/Condition", tokDE, nil, 400, "required"},
		{"include", "GET", "/fhir/Condition?patient=" + pid + "&_include=Condition:subject", tokDE, nil, 400, "not-supported"},
		{"strict unknown", "GET", "/fhir/Patient?identifier=x&foo=1", tokDE, []string{"Prefer", "handling=strict"}, 400, "not-supported"},
		{"xml", "GET", "/fhir/metadata", "", []string{"Accept", "application/fhir+xml"}, 406, "not-supported"},
		{"write", "POST", "/fhir/Patient", tokDE, nil, 405, "not-supported"},
		{"delete", "DELETE", "/fhir/Patient/" + pid, tokDE, nil, 405, "not-supported"},
		{"no route", "GET", "/nothing", "", nil, 404, "not-found"},
		{"unknown operation", "GET", "/fhir/Patient/$frobnicate", tokDE, nil, 404, "not-supported"},
		{"no purpose", "GET", "/fhir/Patient?identifier=urn:test:passport|SAME", tokNoPurp, nil, 403, "forbidden"},
		{"cross-border read", "GET", "/fhir/Patient/" + nlPid, tokDE, nil, 403, "forbidden"},
		{"long uri", "GET", "/fhir/Patient?identifier=" + strings.Repeat("x", 3000), tokDE, nil, 414, "too-long"},
		{"big header", "GET", "/fhir/metadata", "", []string{"X-Pad", strings.Repeat("x", 3000)}, 431, "too-long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, tt.method, tt.target, tt.token, tt.hdr...)
			outcome(t, r, tt.status, tt.code)
			if tt.status == 401 && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatal("401 without a Bearer challenge")
			}
			if strings.Contains(string(r.body), "SAME") || strings.Contains(string(r.body), "xxxxxxxx") {
				t.Fatalf("the outcome quotes request data: %s", r.body)
			}
		})
	}
	if f.nl.Calls() != 0 {
		t.Fatalf("a source the policy refused was contacted %d times", f.nl.Calls())
	}
}

func TestOversizedBody(t *testing.T) {
	f := newFixture(t, 1)
	r := httptest.NewRequest("POST", "/fhir/$to-mhp", strings.NewReader(strings.Repeat("x", 4096)))
	r.Header.Set("Authorization", "Bearer "+tokDE)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	outcome(t, response{status: w.Code, header: w.Header(), body: w.Body.Bytes(), json: decode(w.Body.Bytes())}, 413, "too-long")
}

func decode(b []byte) map[string]any {
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestDeniedCarriesRuleIDs(t *testing.T) {
	f := newFixture(t, 1)
	r := f.do(t, "GET", "/fhir/Patient?identifier=urn:test:passport|SAME", tokNoPurp)
	outcome(t, r, 403, "forbidden")
	if !strings.Contains(string(r.body), "purpose.missing") {
		t.Fatalf("the refusing rule ids must be in the outcome: %s", r.body)
	}
	e := f.auditor.last(t)
	if e.Outcome != audit.OutcomeDenied || e.Status != 403 || len(e.Decisions) == 0 {
		t.Fatalf("denial not audited: %+v", e)
	}
}

func TestSearchPagingAndTotal(t *testing.T) {
	f := newFixture(t, 5)
	r := f.do(t, "GET", "/fhir/Patient?identifier=urn:test:passport|SAME&_count=2", tokDE)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	if r.json["total"] != float64(5) || r.json["type"] != "searchset" {
		t.Fatalf("total %v type %v", r.json["total"], r.json["type"])
	}
	seen := map[string]bool{}
	next := "/fhir/Patient?identifier=urn:test:passport|SAME&_count=2"
	for pages := 0; next != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := f.do(t, "GET", next, tokDE)
		fhirJSON(t, r)
		next = ""
		for _, l := range r.json["link"].([]any) {
			l := l.(map[string]any)
			if l["relation"] == "next" {
				u, _ := url.Parse(l["url"].(string))
				next = u.Path + "?" + u.RawQuery
			}
		}
		for _, e := range r.json["entry"].([]any) {
			res := e.(map[string]any)["resource"].(map[string]any)
			if seen[res["id"].(string)] {
				t.Fatalf("entry %s on two pages", res["id"])
			}
			seen[res["id"].(string)] = true
			if !strings.HasPrefix(e.(map[string]any)["fullUrl"].(string), "http://gw.test/fhir/Patient/de.") {
				t.Fatalf("fullUrl %v", e.(map[string]any)["fullUrl"])
			}
		}
	}
	if len(seen) != 5 {
		t.Fatalf("paging returned %d distinct patients, want 5", len(seen))
	}
	if f.nl.Calls() != 0 {
		t.Fatal("cross-border source contacted without policy permission")
	}
}

func TestTotalDoesNotRevealWithheld(t *testing.T) {
	f := newFixture(t, 1)
	pid, _ := f.ids.Encode("de", "Patient", "p0")
	r := f.do(t, "GET", "/fhir/Condition?patient="+pid, tokDE)
	fhirJSON(t, r)
	if r.json["total"] != float64(1) || strings.Contains(string(r.body), "hidden") {
		t.Fatalf("the PSY-labelled condition leaked or was counted: %s", r.body)
	}
	r = f.do(t, "GET", "/fhir/Condition?patient="+pid+"&_summary=count", tokDE)
	fhirJSON(t, r)
	if r.json["total"] != float64(1) || r.json["entry"] != nil {
		t.Fatalf("_summary=count: %s", r.body)
	}
}

func TestReadElementsAndAudit(t *testing.T) {
	f := newFixture(t, 1)
	pid, _ := f.ids.Encode("de", "Patient", "p0")
	r := f.do(t, "GET", "/fhir/Patient/"+pid+"?_elements=identifier", tokDE)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	if r.json["id"] != pid || r.json["name"] != nil || r.json["identifier"] == nil || !strings.Contains(string(r.body), "SUBSETTED") {
		t.Fatalf("_elements not applied: %s", r.body)
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Fatal("no X-Request-Id")
	}
	e := f.auditor.last(t)
	if e.Outcome != audit.OutcomeSuccess || e.Patient != "Patient/"+pid || e.Released["Patient"] != 1 ||
		e.Sources[0] != "de" || e.TraceID != r.header.Get("X-Request-Id") || e.Requester.PurposeOfUse != "TREAT" {
		t.Fatalf("audit entry %+v", e)
	}
}

func TestAuditFailureWithholdsData(t *testing.T) {
	f := newFixture(t, 1)
	f.auditor.fail = true
	pid, _ := f.ids.Encode("de", "Patient", "p0")
	r := f.do(t, "GET", "/fhir/Patient/"+pid, tokDE)
	outcome(t, r, 503, "transient")
	if strings.Contains(string(r.body), "Doe") {
		t.Fatal("data released without an audit record")
	}
}

func TestLenientIgnoredParametersListed(t *testing.T) {
	f := newFixture(t, 1)
	r := f.do(t, "GET", "/fhir/Patient?identifier=urn:test:passport|SAME&family=Doe", tokDE)
	fhirJSON(t, r)
	if !strings.Contains(string(r.body), "ignored unknown search parameters: family") {
		t.Fatalf("ignored parameters not listed: %s", r.body)
	}
}

func TestPartialFailureWarning(t *testing.T) {
	f := newFixture(t, 1)
	f.de.Fail = nil
	down := &federatetest.Source{SourceID: "de-down", SourceCountry: "DE", Fail: source.ErrUnavailable}
	eng := federatetest.Mapper{}
	dec := federatetest.AllowCountry("DE")
	fed, err := federate.New(federate.Options{Sources: []federate.Source{f.de, down}, Mapper: eng, Decider: dec, IDs: f.ids, SourceTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h, err := New(Options{Federation: fed, Auditor: f.auditor, Verifier: tokenVerifier{tokDE: {Country: "DE", PurposeOfUse: "TREAT"}}})
	if err != nil {
		t.Fatal(err)
	}
	f.h = h
	r := f.do(t, "GET", "/fhir/Patient?identifier=urn:test:passport|SAME", tokDE)
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	checkFullURLs(t, r, "")
	if !strings.Contains(string(r.body), "source de-down could not contribute (unavailable)") {
		t.Fatalf("no warning naming the source: %s", r.body)
	}
}

func TestMetadataAndHealth(t *testing.T) {
	f := newFixture(t, 1)
	r := f.do(t, "GET", "/fhir/metadata", "")
	if r.status != 200 {
		t.Fatalf("metadata status %d", r.status)
	}
	fhirJSON(t, r)
	if r.json["fhirVersion"] != "4.0.1" || !strings.Contains(string(r.body), `"type":"Observation"`) {
		t.Fatalf("capability statement: %s", r.body)
	}
	r = f.do(t, "GET", "/healthz", "")
	if r.status != 200 || r.json["status"] != "up" {
		t.Fatalf("healthz %d %s", r.status, r.body)
	}
	r = f.do(t, "GET", "/readyz", "")
	if r.status != 200 || r.json["status"] != "degraded" {
		t.Fatalf("readyz with a failing non-essential check: %d %s", r.status, r.body)
	}
}
