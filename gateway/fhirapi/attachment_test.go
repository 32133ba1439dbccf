package fhirapi

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

const (
	tokNoDocs  = "token-nodocs"  // the release policy withholds DocumentReferences
	tokRefused = "token-refused" // the query policy refuses the source
)

// attachmentGateway is a Handler over one FHIR REST source mapped by the
// real engine (profile ips, so withhold-attachments runs), a policy that
// refuses tokRefused at the query phase and DocumentReferences to
// tokNoDocs at release, and a 64-byte attachment bound.
func attachmentGateway(t *testing.T, base string) *fixture {
	t.Helper()
	src, err := source.NewFHIR(source.Options{ID: "de-docs", Country: "DE", Profile: "ips", Kind: source.KindFHIR,
		BaseURL: base, Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := federate.NewIDCodec([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	decider := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		switch {
		case in.Requester.ClientID == "refused":
			return authz.Decision{Reasons: []string{"test.refused"}, Revision: "r1", ID: "d"}, nil
		case in.Requester.ClientID == "nodocs" && in.Resource != nil && in.Resource.Type == "DocumentReference":
			return authz.Decision{Reasons: []string{"test.no-documents"}, Revision: "r1", ID: "d"}, nil
		}
		return authz.Decision{Allow: true, Reasons: []string{"test.allow"}, Revision: "r1", ID: "d"}, nil
	}}
	fed, err := federate.New(federate.Options{Sources: []federate.Source{src}, Mapper: eng, Decider: decider,
		IDs: ids, SourceTimeout: 5 * time.Second, Deadline: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	au := &recordingAuditor{}
	req := func(client string) auth.Requester {
		return auth.Requester{ClientID: client, Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"}
	}
	h, err := New(Options{Federation: fed, Auditor: au, BaseURL: "http://gw.test/fhir", MaxAttachmentBytes: 64,
		Verifier: tokenVerifier{tokDE: req("c"), tokNoDocs: req("nodocs"), tokRefused: req("refused")}})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{h: h, ids: ids, auditor: au}
}

func docRefJSON(id, attachment string) string {
	return fmt.Sprintf(`{"resourceType":"DocumentReference","id":%q,"status":"current","subject":{"reference":"Patient/p1"},`+
		`"type":{"text":"Discharge letter"},"content":[{"attachment":%s}]}`, id, attachment)
}

// Attachments are served through the gateway: the released
// DocumentReference points to $attachment, never to the source, and the
// route gives the bytes of inline data or of a url under the source's
// base, refuses a url on another host, a bound exceeded and what the
// policy refuses, as a read would.
func TestAttachmentRoute(t *testing.T) {
	const letter = "Discharge letter: asthma, stable."
	// A server on another host (another port is another origin) that
	// must never be asked.
	var foreignHits atomic.Int64
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		foreignHits.Add(1)
		_, _ = w.Write([]byte("foreign"))
	}))
	t.Cleanup(foreign.Close)

	fs := newFHIRServer(t, 20,
		patientJSON("p1", "ATT1"),
		docRefJSON("inline", fmt.Sprintf(`{"contentType":"text/plain","data":%q,"title":"Letter"}`, base64.StdEncoding.EncodeToString([]byte(letter)))),
		docRefJSON("under-base", `{"contentType":"application/pdf","url":"Binary/pdf1"}`),
		docRefJSON("absolute", `{"url":"BASE/Binary/pdf1"}`),
		docRefJSON("foreign", fmt.Sprintf(`{"contentType":"application/pdf","url":%q}`, foreign.URL+"/fhir/Binary/pdf1")),
		docRefJSON("big", fmt.Sprintf(`{"contentType":"text/plain","data":%q}`, base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 65))))),
		docRefJSON("big-url", `{"contentType":"text/plain","url":"Binary/big"}`),
		`{"resourceType":"DiagnosticReport","id":"rep","status":"final","subject":{"reference":"Patient/p1"},"code":{"text":"Chest X-ray"},`+
			`"presentedForm":[{"contentType":"text/plain","title":"no content"},{"contentType":"application/pdf","url":"Binary/pdf1"}]}`,
	)
	// Binary content under the source's base.
	fs.resources = append(fs.resources,
		fhirResource{typ: "Binary", id: "pdf1", json: []byte("%PDF-1.4 tiny")},
		fhirResource{typ: "Binary", id: "big", json: []byte(strings.Repeat("y", 100))})
	for i, r := range fs.resources {
		if r.id == "absolute" {
			fs.resources[i].json = []byte(strings.Replace(string(r.json), "BASE", fs.base(), 1))
		}
	}
	g := attachmentGateway(t, fs.base())
	id := func(upstream string) string {
		gid, err := g.ids.Encode("de-docs", "DocumentReference", upstream)
		if err != nil {
			t.Fatal(err)
		}
		return gid
	}

	// The released resource names the gateway's route, and nothing of the
	// source: no inline data, no source url.
	for _, up := range []string{"inline", "under-base", "foreign"} {
		r := g.do(t, "GET", "/fhir/DocumentReference/"+id(up), tokDE)
		if r.status != 200 {
			t.Fatalf("read %s: %d %s", up, r.status, r.body)
		}
		att := r.json["content"].([]any)[0].(map[string]any)["attachment"].(map[string]any)
		want := "http://gw.test/fhir/DocumentReference/" + id(up) + "/$attachment?content=0"
		if att["url"] != want || att["data"] != nil {
			t.Fatalf("%s attachment %v, want url %s and no data", up, att, want)
		}
		if strings.Contains(string(r.body), fs.URL) || strings.Contains(string(r.body), foreign.URL) {
			t.Fatalf("%s names a national server: %s", up, r.body)
		}
	}

	// A report's presented forms, counted as the resource lists them.
	repID, err := g.ids.Encode("de-docs", "DiagnosticReport", "rep")
	if err != nil {
		t.Fatal(err)
	}
	rep := g.do(t, "GET", "/fhir/DiagnosticReport/"+repID, tokDE)
	forms, _ := rep.json["presentedForm"].([]any)
	if rep.status != 200 || len(forms) != 2 || forms[0].(map[string]any)["url"] != nil ||
		forms[1].(map[string]any)["url"] != "http://gw.test/fhir/DiagnosticReport/"+repID+"/$attachment?presentedForm=1" {
		t.Fatalf("DiagnosticReport: %d %s", rep.status, rep.body)
	}
	if r := g.do(t, "GET", "/fhir/DiagnosticReport/"+repID+"/$attachment?presentedForm=1", tokDE); r.status != 200 || string(r.body) != "%PDF-1.4 tiny" {
		t.Fatalf("presentedForm=1: %d %s", r.status, r.body)
	}
	if r := g.do(t, "GET", "/fhir/DiagnosticReport/"+repID+"/$attachment?presentedForm=0", tokDE); r.status != 404 {
		t.Fatalf("presentedForm=0 (no content): %d %s", r.status, r.body)
	}

	tests := []struct {
		name, upstream, query, token string
		status                       int
		ctype, body, code            string
	}{
		{"inline data", "inline", "content=0", tokDE, 200, "text/plain", letter, ""},
		{"url under the base", "under-base", "content=0", tokDE, 200, "application/pdf", "%PDF-1.4 tiny", ""},
		{"absolute url under the base, type from the source", "absolute", "content=0", tokDE, 200, "application/fhir+json", "%PDF-1.4 tiny", ""},
		{"url on another host", "foreign", "content=0", tokDE, 502, "", "", "transient"},
		{"inline data past the bound", "big", "content=0", tokDE, 413, "", "", "too-long"},
		{"fetched bytes past the bound", "big-url", "content=0", tokDE, 413, "", "", "too-long"},
		{"no such attachment", "inline", "content=1", tokDE, 404, "", "", "not-found"},
		{"no such resource", "missing", "content=0", tokDE, 404, "", "", "not-found"},
		{"refused requester", "inline", "content=0", tokRefused, 403, "", "", "forbidden"},
		{"resource withheld at release", "inline", "content=0", tokNoDocs, 403, "", "", "forbidden"},
		{"bad index", "inline", "content=x", tokDE, 400, "", "", "invalid"},
		{"extra parameter", "inline", "content=0&url=http://x", tokDE, 400, "", "", "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(g.auditor.entries)
			r := g.do(t, "GET", "/fhir/DocumentReference/"+id(tt.upstream)+"/$attachment?"+tt.query, tt.token, "Accept", "*/*")
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control %q", cc)
			}
			if tt.status == 200 {
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, tt.ctype) {
					t.Errorf("Content-Type %q, want %s", ct, tt.ctype)
				}
				if string(r.body) != tt.body {
					t.Errorf("body %q, want %q", r.body, tt.body)
				}
			} else {
				outcome(t, r, tt.status, tt.code)
			}
			if tt.status == 400 {
				return
			}
			// One AuditEvent, naming the resource.
			if n := len(g.auditor.entries) - before; n != 1 {
				t.Fatalf("%d audit entries, want 1", n)
			}
			e := g.auditor.last(t)
			if e.Resource != "DocumentReference/"+id(tt.upstream) || e.Operation != "attachment" || e.Status != tt.status {
				t.Errorf("audit entry %+v", e)
			}
		})
	}
	if n := foreignHits.Load(); n != 0 {
		t.Errorf("the server on another host was asked %d times", n)
	}
}
