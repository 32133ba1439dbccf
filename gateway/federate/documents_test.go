package federate

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/mappings"
)

// ukConsent is a Consent of the uk sample patient that permits the
// release of the migration context (MIGSTAT) to GB for treatment.
const ukConsent = `{"resourceType":"Consent","id":"k1","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/3dcf61d4-19e7-5c6d-b335-73d34d18bded"},"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},"provision":{"type":"deny","provision":[{"type":"permit","actor":[{"role":{"text":"x"},"reference":{"identifier":{"system":"urn:iso:std:iso:3166","value":"GB"}}}],"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}],"securityLabel":[{"system":"https://fhir.migrant-health.org/mhp/CodeSystem/mhp-sensitivity","code":"MIGSTAT"}]}]}}`

// docPolicy is a test policy whose revision and obligations a test
// changes between requests: it allows everything but class S data, which
// it releases only with a consent provision permitting MIGSTAT.
type docPolicy struct {
	mu       sync.Mutex
	revision string
	labels   []authz.Coding // added to every released resource
}

func (p *docPolicy) set(revision string, labels []authz.Coding) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.revision, p.labels = revision, labels
}

func (p *docPolicy) decide(in authz.Input) (authz.Decision, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := authz.Decision{Allow: true, Revision: p.revision, Reasons: []string{"test.allow"}}
	if in.Phase != authz.PhaseRelease {
		return d, nil
	}
	if in.Resource.Class == mappings.ClassSensitive && !slices.ContainsFunc(in.Consent, func(pr authz.Provision) bool {
		return pr.Type == "permit" && slices.Contains(pr.SecurityLabels, "MIGSTAT")
	}) {
		return authz.Decision{Revision: p.revision, Reasons: []string{"test.consent-missing"}}, nil
	}
	if len(p.labels) > 0 {
		d.Obligations = []authz.Obligation{{Kind: authz.ObligationLabel, Labels: p.labels, Rule: "test.label"}}
	}
	return d, nil
}

// docFixture is a Linker over the uk sample source (no cache of source
// data, so every request reads what the source holds now).
type docFixture struct {
	src    *federatetest.Source
	policy *docPolicy
	l      *Linker
	pid    string
}

func newDocFixture(t *testing.T, documentBytes int64) *docFixture {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	f := &docFixture{src: ukSource(t), policy: &docPolicy{revision: "r1"}}
	s, err := New(Options{Sources: []Source{f.src}, Mapper: eng, Decider: &federatetest.Decider{Fn: f.policy.decide}, IDs: testCodec(t)})
	if err != nil {
		t.Fatal(err)
	}
	if f.l, err = NewLinker(s, LinkerOptions{DocumentBytes: documentBytes}); err != nil {
		t.Fatal(err)
	}
	f.pid, _ = s.opts.IDs.Encode("uk", "Patient", "3dcf61d4-19e7-5c6d-b335-73d34d18bded")
	return f
}

var gbClinician = auth.Requester{ClientID: "c", Org: "o", Country: "GB", Role: "clinician", PurposeOfUse: "TREAT"}

func (f *docFixture) summary(t *testing.T, rq auth.Requester, sr SummaryRequest) (*Result, []byte) {
	t.Helper()
	sr.Patient = PatientQuery{ID: f.pid}
	if sr.BaseURL == "" {
		sr.BaseURL = "https://gw.example/fhir"
	}
	res, b, err := f.l.Summary(context.Background(), Request{Requester: rq, Interaction: "operation", ResourceType: "Patient", Operation: "summary"}, sr)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// bundleID is the document Bundle's id: a fresh rendering draws a new
// random one, so two answers with the same id are one rendering.
func bundleID(t *testing.T, b []byte) string {
	t.Helper()
	var d struct{ ID string }
	if err := json.Unmarshal(b, &d); err != nil || d.ID == "" {
		t.Fatalf("not a document: %v %.200s", err, b)
	}
	return d.ID
}

// A summary asked again with every input as before is the document
// rendered the first time, byte for byte; the identification, release
// decisions and what the audit counts are still made on every request.
// A no-cache request renders afresh. With the document cache off, every
// summary is a new rendering.
func TestSummaryDocumentReused(t *testing.T) {
	f := newDocFixture(t, 0)
	res1, first := f.summary(t, gbClinician, SummaryRequest{})
	res2, second := f.summary(t, gbClinician, SummaryRequest{})
	if !bytes.Equal(first, second) {
		t.Fatalf("the same summary was rendered twice: bundle %s then %s", bundleID(t, first), bundleID(t, second))
	}
	if len(res1.Entries) == 0 || len(res2.Entries) != len(res1.Entries) {
		t.Fatalf("released entries %d then %d: the audit must count every release", len(res1.Entries), len(res2.Entries))
	}
	if len(res2.Decisions) == 0 || len(res2.Decisions) != len(res1.Decisions) {
		t.Fatalf("decisions %d then %d: a reused document is still decided on", len(res1.Decisions), len(res2.Decisions))
	}

	// Cache-Control: no-cache asks for a fresh rendering, which is then
	// the one reused.
	_, fresh, err := f.l.Summary(context.Background(), Request{Requester: gbClinician, Interaction: "operation", ResourceType: "Patient",
		Operation: "summary", NoCache: true}, SummaryRequest{Patient: PatientQuery{ID: f.pid}, BaseURL: "https://gw.example/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	if bundleID(t, fresh) == bundleID(t, first) {
		t.Fatal("a no-cache summary was served the kept rendering")
	}
	if _, after := f.summary(t, gbClinician, SummaryRequest{}); !bytes.Equal(after, fresh) {
		t.Fatal("the fresh rendering did not replace the kept one")
	}

	off := newDocFixture(t, -1)
	_, a := off.summary(t, gbClinician, SummaryRequest{})
	_, b := off.summary(t, gbClinician, SummaryRequest{})
	if bundleID(t, a) == bundleID(t, b) {
		t.Fatal("with the document cache off, two summaries share a rendering")
	}
}

// Any change of an input that shapes the document gives a fresh rendering
// on the next request: the consent, the policy revision, the obligations,
// the source's data, the requester, the language, the base URL and the
// profile asked for. Each case asks twice before the change (the second
// answer reused), then once after.
func TestSummaryDocumentFreshOnChange(t *testing.T) {
	es := gbClinician
	es.Role = "nurse"
	cases := []struct {
		name   string
		change func(*docFixture) (auth.Requester, SummaryRequest)
		// shows, when set, is in the document after the change and not
		// before.
		shows string
	}{
		{"consent given", func(f *docFixture) (auth.Requester, SummaryRequest) {
			f.src.Resources = append(f.src.Resources, federatetest.Resource(t, ukConsent))
			return gbClinician, SummaryRequest{}
		}, "migration-context"},
		{"new policy revision", func(f *docFixture) (auth.Requester, SummaryRequest) {
			f.policy.set("r2", nil)
			return gbClinician, SummaryRequest{}
		}, ""},
		{"label obligation", func(f *docFixture) (auth.Requester, SummaryRequest) {
			f.policy.set("r1", []authz.Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "NOAUTH"}})
			return gbClinician, SummaryRequest{}
		}, "NOAUTH"},
		{"source data changed", func(f *docFixture) (auth.Requester, SummaryRequest) {
			for i, r := range f.src.Resources {
				if r.Type == "Patient" && strings.HasPrefix(r.ID, "3dcf61d4") {
					f.src.Resources[i].JSON = bytes.ReplaceAll(r.JSON, []byte("1990-08-12"), []byte("1990-08-13"))
				}
			}
			return gbClinician, SummaryRequest{}
		}, "1990-08-13"},
		{"other requester role", func(*docFixture) (auth.Requester, SummaryRequest) {
			return es, SummaryRequest{}
		}, ""},
		{"other language", func(*docFixture) (auth.Requester, SummaryRequest) {
			return gbClinician, SummaryRequest{Language: "nl"}
		}, `"language":"nl"`},
		{"other base URL", func(*docFixture) (auth.Requester, SummaryRequest) {
			return gbClinician, SummaryRequest{BaseURL: "https://other.example/fhir"}
		}, "https://other.example/fhir"},
		{"IPS profile asked for", func(*docFixture) (auth.Requester, SummaryRequest) {
			return gbClinician, SummaryRequest{Profiles: []string{ProfileIPSComposition}}
		}, ProfileIPSComposition},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newDocFixture(t, 0)
			_, first := f.summary(t, gbClinician, SummaryRequest{})
			_, before := f.summary(t, gbClinician, SummaryRequest{})
			if bundleID(t, first) != bundleID(t, before) {
				t.Fatal("the unchanged summary was not reused")
			}
			rq, sr := tc.change(f)
			_, after := f.summary(t, rq, sr)
			if bundleID(t, after) == bundleID(t, before) {
				t.Fatal("the document rendered before the change was served after it")
			}
			if tc.shows != "" && (strings.Contains(string(before), tc.shows) || !strings.Contains(string(after), tc.shows)) {
				t.Fatalf("%q: in the document before %v, after %v", tc.shows,
					strings.Contains(string(before), tc.shows), strings.Contains(string(after), tc.shows))
			}
			_, again := f.summary(t, rq, sr)
			if !bytes.Equal(after, again) {
				t.Fatal("the changed summary was not reused when asked again")
			}
		})
	}
}
