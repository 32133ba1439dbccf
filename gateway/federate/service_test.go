package federate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

func newService(t *testing.T, d Decider, sources ...Source) *Service {
	t.Helper()
	eng := federatetest.Mapper{}
	s, err := New(Options{Sources: sources, Mapper: eng, Decider: d, IDs: testCodec(t),
		Deadline: 2 * time.Second, SourceTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const (
	patientP1 = `{"resourceType":"Patient","id":"p1","identifier":[{"system":"http://hl7.org/fhir/sid/passport-UKR","value":"FX123"}],"name":[{"family":"Test"}],"birthDate":"1990"}`
	condC1    = `{"resourceType":"Condition","id":"c1","subject":{"reference":"Patient/p1"},"code":{"text":"asthma"}}`
	obsHIV    = `{"resourceType":"Observation","id":"o1","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"HIV"}]},"status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"},"valueString":"positive"}`
)

var clinician = Request{Requester: auth.Requester{Country: "DE", Role: "clinician", PurposeOfUse: "TREAT"}, Interaction: "search-type", ResourceType: "Patient"}

func TestSearchPatientsSkipsDeniedSources(t *testing.T) {
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	nl := &federatetest.Source{SourceID: "nl", SourceCountry: "NL", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	s := newService(t, federatetest.AllowCountry("DE"), de, nl)
	r, err := s.SearchPatients(context.Background(), clinician, "http://hl7.org/fhir/sid/passport-UKR|FX123")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 1 || r.Entries[0].Source != "de" {
		t.Fatalf("entries = %+v, want one from de", r.Entries)
	}
	if nl.Calls() != 0 {
		t.Fatalf("a source the policy refused was contacted %d times", nl.Calls())
	}
	if len(r.Warnings) != 0 {
		t.Fatalf("a refused source must leave no warning, got %+v", r.Warnings)
	}
	if strings.Contains(r.Entries[0].ID, "p1") || !strings.HasPrefix(r.Entries[0].ID, "de.") {
		t.Fatalf("id %q is not a sealed gateway id of source de", r.Entries[0].ID)
	}
}

func TestSearchPatientsPartialFailure(t *testing.T) {
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	down := &federatetest.Source{SourceID: "de-down", SourceCountry: "DE", Fail: fmt.Errorf("%w: 503", source.ErrUnavailable)}
	slow := &federatetest.Source{SourceID: "de-slow", SourceCountry: "DE", Delay: 2 * time.Second}
	s := newService(t, federatetest.AllowCountry("DE"), de, down, slow)
	r, err := s.SearchPatients(context.Background(), clinician, "|FX123")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 1 {
		t.Fatalf("want the answer of the healthy source, got %d entries", len(r.Entries))
	}
	got := map[string]string{}
	for _, w := range r.Warnings {
		got[w.Source] = w.Code
	}
	if got["de-down"] != "unavailable" || got["de-slow"] != "timeout" || len(got) != 2 {
		t.Fatalf("warnings = %v", got)
	}
}

func TestTruncatedSearchWarns(t *testing.T) {
	trunc := &truncatingSource{Source: federatetest.Source{SourceID: "de", SourceCountry: "DE",
		Resources: []source.Resource{federatetest.Resource(t, patientP1)}}}
	s := newService(t, federatetest.AllowCountry("DE"), trunc)
	r, err := s.SearchPatients(context.Background(), clinician, "|FX123")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 1 || len(r.Warnings) != 1 || r.Warnings[0].Code != WarnTruncated || r.Warnings[0].Pages != 10 {
		t.Fatalf("want the gathered results and a truncated warning, got %+v / %+v", r.Entries, r.Warnings)
	}
}

// truncatingSource answers searches as a FHIR source does when there are
// more pages than its bound: results plus a PartialError wrapping
// ErrTruncated.
type truncatingSource struct{ federatetest.Source }

func (s *truncatingSource) Search(ctx context.Context, typ string, q url.Values) ([]source.Resource, error) {
	res, err := s.Source.Search(ctx, typ, q)
	if err != nil || typ != "Patient" {
		return res, err
	}
	return res, fmt.Errorf("source de: search Patient: %w", &source.PartialError{Pages: 10, Cause: source.ErrTruncated})
}

// consentlessSource cannot answer Consent searches.
type consentlessSource struct{ federatetest.Source }

func (s *consentlessSource) Search(ctx context.Context, typ string, q url.Values) ([]source.Resource, error) {
	if typ == "Consent" {
		return nil, fmt.Errorf("%w: 503", source.ErrUnavailable)
	}
	return s.Source.Search(ctx, typ, q)
}

func TestNoConsentAnswerNoRelease(t *testing.T) {
	src := &consentlessSource{Source: federatetest.Source{SourceID: "de", SourceCountry: "DE",
		Resources: []source.Resource{federatetest.Resource(t, patientP1)}}}
	other := &federatetest.Source{SourceID: "de2", SourceCountry: "DE"}
	s := newService(t, federatetest.AllowCountry("DE"), src, other)
	r, err := s.SearchPatients(context.Background(), clinician, "|FX123")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 0 {
		t.Fatalf("released without knowing the patient's consent: %+v", r.Entries)
	}
	if len(r.Warnings) != 1 || r.Warnings[0].Source != "de" || r.Warnings[0].Code != "unavailable" {
		t.Fatalf("warnings = %+v", r.Warnings)
	}
}

func TestSearchPatientsAllFailed(t *testing.T) {
	slow := &federatetest.Source{SourceID: "a", SourceCountry: "DE", Delay: 2 * time.Second}
	down := &federatetest.Source{SourceID: "b", SourceCountry: "DE", Fail: source.ErrUnavailable}
	for _, tt := range []struct {
		name    string
		sources []Source
		timeout bool
	}{
		{"all time out", []Source{slow}, true},
		{"mixed", []Source{slow, down}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newService(t, federatetest.AllowCountry("DE"), tt.sources...)
			_, err := s.SearchPatients(context.Background(), clinician, "|x")
			var sf *SourcesFailedError
			if !errors.As(err, &sf) || sf.Timeout != tt.timeout {
				t.Fatalf("err = %v, want SourcesFailedError{Timeout: %v}", err, tt.timeout)
			}
		})
	}
}

func TestSearchPatientsAllDenied(t *testing.T) {
	nl := &federatetest.Source{SourceID: "nl", SourceCountry: "NL", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	s := newService(t, federatetest.AllowCountry("DE"), nl)
	r, err := s.SearchPatients(context.Background(), clinician, "|FX123")
	var de *DeniedError
	if !errors.As(err, &de) || !errors.Is(err, ErrDenied) || len(de.Reasons) == 0 {
		t.Fatalf("err = %v, want a DeniedError with reasons", err)
	}
	if len(r.Decisions) != 1 || r.Decisions[0].Phase != authz.PhaseQuery {
		t.Fatalf("the refusal must be recorded for audit, got %+v", r.Decisions)
	}
	if nl.Calls() != 0 {
		t.Fatal("denied source contacted")
	}
}

func TestPolicyErrorFailsClosed(t *testing.T) {
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	d := &federatetest.Decider{Fn: func(authz.Input) (authz.Decision, error) {
		return authz.Decision{Allow: true}, errors.New("engine broken")
	}}
	s := newService(t, d, de)
	if _, err := s.SearchPatients(context.Background(), clinician, "|FX123"); !errors.Is(err, ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied when the policy errs", err)
	}
}

// A decision the engine could not take keeps the reason and ids the engine
// gave it, in the decision records (the AuditEvent) and in the refusal (the
// 403), as in the decision log.
func TestPolicyErrorKeepsTheEngineReasons(t *testing.T) {
	for _, reason := range []string{authz.ReasonError, authz.ReasonUndefined, authz.ReasonNoPolicy} {
		t.Run(reason, func(t *testing.T) {
			de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
			d := &federatetest.Decider{Fn: func(authz.Input) (authz.Decision, error) {
				return authz.Decision{Allow: true, ID: "decision-1", Revision: "r7", Reasons: []string{reason}}, errors.New("engine broken")
			}}
			res, err := newService(t, d, de).SearchPatients(context.Background(), clinician, "|FX123")
			var denied *DeniedError
			if !errors.As(err, &denied) || !slices.Equal(denied.Reasons, []string{reason}) {
				t.Fatalf("err = %v, want a refusal for %s", err, reason)
			}
			if len(res.Decisions) != 1 {
				t.Fatalf("%d decisions recorded", len(res.Decisions))
			}
			got := res.Decisions[0].Decision
			if got.Allow || got.ID != "decision-1" || got.Revision != "r7" || !slices.Equal(got.Reasons, []string{reason}) {
				t.Fatalf("recorded %+v, want the engine's decision, denied", got)
			}
		})
	}
	t.Run("a decider that gives no reason", func(t *testing.T) {
		de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
		d := &federatetest.Decider{Fn: func(authz.Input) (authz.Decision, error) { return authz.Decision{}, errors.New("down") }}
		res, _ := newService(t, d, de).SearchPatients(context.Background(), clinician, "|FX123")
		if len(res.Decisions) != 1 || !slices.Equal(res.Decisions[0].Decision.Reasons, []string{authz.ReasonError}) {
			t.Fatalf("recorded %+v", res.Decisions)
		}
	})
}

func TestSearchByPatientReleaseAndRedaction(t *testing.T) {
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1), federatetest.Resource(t, condC1), federatetest.Resource(t, obsHIV)}}
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		dec := authz.Decision{Allow: true, Reasons: []string{"ok"}}
		if in.Phase == authz.PhaseRelease && in.Resource.Type == "Condition" {
			return authz.Decision{Reasons: []string{"test.no-conditions"}}, nil
		}
		if in.Phase == authz.PhaseRelease && in.Resource.Type == "Observation" {
			if len(in.Resource.Security) != 1 || in.Resource.Security[0].Code != "HIV" {
				return authz.Decision{}, fmt.Errorf("facts lack the HIV label: %+v", in.Resource.Security)
			}
			dec.Obligations = []authz.Obligation{{Kind: authz.ObligationRedact, Paths: []string{"Observation.value"}, Rule: "redact.hiv"}}
		}
		return dec, nil
	}}
	s := newService(t, d, de)
	pid, _ := s.opts.IDs.Encode("de", "Patient", "p1")
	r, err := s.SearchByPatient(context.Background(), clinician, "Condition", pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 0 {
		t.Fatalf("the denied Condition was released: %+v", r.Entries)
	}
	r, err = s.SearchByPatient(context.Background(), clinician, "Observation", pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 1 {
		t.Fatalf("want the Observation, got %d", len(r.Entries))
	}
	b, err := r4.Marshal(r.Entries[0].Resource)
	if err != nil {
		t.Fatal(err)
	}
	js := string(b)
	if strings.Contains(js, "positive") || !strings.Contains(js, `"REDACTED"`) {
		t.Fatalf("redaction not applied: %s", js)
	}
	if r.Patient != "Patient/"+pid {
		t.Fatalf("Patient = %q", r.Patient)
	}
}

func TestReadDeniedAndNotFound(t *testing.T) {
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	nl := &federatetest.Source{SourceID: "nl", SourceCountry: "NL", Resources: []source.Resource{federatetest.Resource(t, patientP1)}}
	s := newService(t, federatetest.AllowCountry("DE"), de, nl)
	read := Request{Requester: clinician.Requester, Interaction: "read", ResourceType: "Patient"}
	deID, _ := s.opts.IDs.Encode("de", "Patient", "p1")
	nlID, _ := s.opts.IDs.Encode("nl", "Patient", "p1")
	missing, _ := s.opts.IDs.Encode("de", "Patient", "nobody")
	r, err := s.Read(context.Background(), read, "Patient", deID)
	if err != nil || len(r.Entries) != 1 || r.Entries[0].ID != deID {
		t.Fatalf("read = %+v, %v", r, err)
	}
	if _, err := s.Read(context.Background(), read, "Patient", nlID); !errors.Is(err, ErrDenied) {
		t.Fatalf("cross-border read err = %v, want ErrDenied", err)
	}
	if nl.Calls() != 0 {
		t.Fatal("denied source contacted")
	}
	if _, err := s.Read(context.Background(), read, "Patient", missing); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing err = %v, want ErrNotFound", err)
	}
	if _, err := s.Read(context.Background(), read, "Patient", "forged.AAAAAAAAAAAAAAAAAAAAAA"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("forged err = %v, want ErrNotFound", err)
	}
}

func TestConsentReachesPolicy(t *testing.T) {
	consent := `{"resourceType":"Consent","id":"k1","status":"active","scope":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/consentscope","code":"patient-privacy"}]},"category":[{"coding":[{"system":"http://loinc.org","code":"59284-0"}]}],"patient":{"reference":"Patient/p1"},"policyRule":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"OPTIN"}]},"provision":{"type":"deny","provision":[{"type":"permit","actor":[{"role":{"text":"x"},"reference":{"identifier":{"system":"urn:iso:std:iso:3166","value":"DE"}}}],"purpose":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}],"securityLabel":[{"system":"https://fhir.migrant-health.org/mhp/CodeSystem/mhp-sensitivity","code":"MIGSTAT"}]}]}}`
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: []source.Resource{federatetest.Resource(t, patientP1), federatetest.Resource(t, consent)}}
	d := federatetest.AllowCountry("DE")
	s := newService(t, d, de)
	if _, err := s.SearchPatients(context.Background(), clinician, "|FX123"); err != nil {
		t.Fatal(err)
	}
	var rel *authz.Input
	inputs := d.Inputs()
	for i := range inputs {
		if inputs[i].Phase == authz.PhaseRelease {
			rel = &inputs[i]
		}
	}
	if rel == nil || len(rel.Consent) != 2 {
		t.Fatalf("release input consent = %+v", rel)
	}
	p := rel.Consent[1]
	if p.Type != "permit" || p.ActorCountries[0] != "DE" || p.Purposes[0] != "TREAT" || p.SecurityLabels[0] != "MIGSTAT" || !strings.HasPrefix(p.ConsentID, "de.") {
		t.Fatalf("nested provision = %+v", p)
	}
	// The policy input must not carry the patient's attributes.
	b, _ := json.Marshal(rel)
	for _, leak := range []string{"1990", "FX123", "Test"} {
		if strings.Contains(string(b), leak) {
			t.Fatalf("policy input carries patient data %q: %s", leak, b)
		}
	}
}

func TestCachedSetRoundTrip(t *testing.T) {
	cr, err := r4.Parse([]byte(obsHIV))
	if err != nil {
		t.Fatal(err)
	}
	in := []mapped{{res: cr, loss: []mappings.Issue{{Severity: "warning", Code: "not-supported", Path: "Observation.x", Message: "dropped"}}}, {res: cr}}
	b, err := encodeSet(mappedSet{items: in, truncated: true, pages: 7, stop: WarnTruncated, dropped: true})
	if err != nil {
		t.Fatal(err)
	}
	set, err := decodeSet(b)
	if err != nil {
		t.Fatal(err)
	}
	out := set.items
	if !set.truncated || set.pages != 7 || set.stop != WarnTruncated || !set.dropped || len(out) != 2 || len(out[0].loss) != 1 || out[0].loss[0].Message != "dropped" || len(out[1].loss) != 0 || r4.ID(out[1].res) != "o1" {
		t.Fatalf("round trip = %+v", set)
	}
	for _, bad := range [][]byte{{0xff}, {0x0a, 0x05, 0x01}, {0x0a, 0x02, 0x12, 0x00}} {
		if _, err := decodeSet(bad); err == nil {
			t.Fatalf("decodeSet(%x) accepted garbage", bad)
		}
	}
	empty, _ := encodeSet(mappedSet{})
	if empty == nil {
		t.Fatal("an empty set must encode to a non-nil value")
	}
	if set, err := decodeSet(empty); err != nil || set.truncated || len(set.items) != 0 {
		t.Fatalf("empty set round trip: %+v %v", set, err)
	}
}

func TestReleaseDecisionsTakenOncePerFacts(t *testing.T) {
	var res []source.Resource
	res = append(res, federatetest.Resource(t, patientP1))
	for i := range 5 {
		res = append(res, federatetest.Resource(t, fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p1"}}`, i)))
	}
	res = append(res, federatetest.Resource(t, obsHIV))
	de := &federatetest.Source{SourceID: "de", SourceCountry: "DE", Resources: res}
	d := federatetest.AllowCountry("DE")
	s := newService(t, d, de)
	pid, _ := s.opts.IDs.Encode("de", "Patient", "p1")
	r, err := s.SearchByPatient(context.Background(), clinician, "Observation", pid)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Entries) != 6 {
		t.Fatalf("want all 6 Observations, got %d", len(r.Entries))
	}
	releases := 0
	for _, in := range d.Inputs() {
		if in.Phase == authz.PhaseRelease {
			releases++
		}
	}
	// Five Observations share their facts; the HIV-labelled one differs.
	if releases != 2 {
		t.Fatalf("%d release decisions, want 2 (one per distinct set of facts)", releases)
	}
}

// A mapper without an identifier registry lets passports alone find a
// person across sources.
func TestDefaultIdentityWithoutRegistry(t *testing.T) {
	reg, err := defaultIdentity(federatetest.Mapper{})
	if err != nil {
		t.Fatal(err)
	}
	got := reg.Systems()
	if len(got) != 1 || got[0].Scope != mappings.ScopeCrossBorder || got[0].Prefix != passportPrefix {
		t.Fatalf("fallback %+v", got)
	}
	if _, ok := reg.Match("http://fhir.nl/fhir/NamingSystem/bsn", "1", nil, ""); ok {
		t.Fatal("a national identifier without a home finds a person")
	}
}
