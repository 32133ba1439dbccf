package federate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/federate/federatetest"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"
)

// countingSource wraps a source, counts its calls and can be made to fail.
type countingSource struct {
	Source
	mu    sync.Mutex
	calls []string
	fail  error
}

var _ Source = (*countingSource)(nil)

func (c *countingSource) note(call string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, call)
	return c.fail
}

func (c *countingSource) Read(ctx context.Context, typ, id string) (source.Resource, error) {
	if err := c.note("read " + typ); err != nil {
		return source.Resource{}, err
	}
	return c.Source.Read(ctx, typ, id)
}

func (c *countingSource) Search(ctx context.Context, typ string, q url.Values) ([]source.Resource, error) {
	if err := c.note("search " + typ + "?" + q.Encode()); err != nil {
		return nil, err
	}
	return c.Source.Search(ctx, typ, q)
}

func (c *countingSource) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.calls)
}

func (c *countingSource) searched(typ string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.calls {
		if strings.HasPrefix(s, "search "+typ+"?") {
			out = append(out, s)
		}
	}
	return out
}

// linkerFixture is six bundle sources (testdata/linker), the real mapping
// engine, and a policy: no US source may be asked, source f's Patient is
// never released, class S never.
type linkerFixture struct {
	src   map[string]*countingSource
	svc   *Service
	l     *Linker
	cache *mapCache
}

func newLinkerFixture(t *testing.T, withCache bool) *linkerFixture {
	t.Helper()
	eng, err := mappings.Load()
	if err != nil {
		t.Fatal(err)
	}
	f := &linkerFixture{src: map[string]*countingSource{}}
	var srcs []Source
	for _, s := range []struct{ id, country string }{{"a", "DE"}, {"b", "NL"}, {"c", "UA"}, {"d", "NL"}, {"e", "US"}, {"f", "FR"}} {
		b, err := source.OpenBundle(source.Options{ID: s.id, Country: s.country, Profile: "ips", Kind: source.KindBundle,
			Dir: filepath.Join("testdata", "linker", s.id), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		cs := &countingSource{Source: b}
		f.src[s.id] = cs
		srcs = append(srcs, cs)
	}
	d := &federatetest.Decider{Fn: func(in authz.Input) (authz.Decision, error) {
		switch {
		case in.Source != nil && in.Source.Country == "US":
			return authz.Decision{Reasons: []string{"test.no-agreement"}}, nil
		case in.Phase == authz.PhaseRelease && in.Source.ID == "f":
			return authz.Decision{Reasons: []string{"test.consent-refused"}}, nil
		case in.Resource != nil && in.Resource.Class == mappings.ClassSensitive:
			return authz.Decision{Reasons: []string{"test.class-s"}}, nil
		}
		return authz.Decision{Allow: true, Reasons: []string{"test.allow"}, Obligations: []authz.Obligation{{Kind: authz.ObligationLabel,
			Labels: []authz.Coding{{System: "http://terminology.hl7.org/CodeSystem/v3-ActCode", Code: "NORDSCLCDS"}}}}}, nil
	}}
	opts := Options{Sources: srcs, Mapper: eng, Decider: d, IDs: testCodec(t), Deadline: 5 * time.Second, SourceTimeout: 2 * time.Second}
	if withCache {
		f.cache = &mapCache{m: map[string][]byte{}}
		opts.Cache = f.cache
	}
	svc, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	f.l, err = NewLinker(svc, LinkerOptions{Now: func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// id returns the gateway id of an upstream resource of a source.
func (f *linkerFixture) id(t *testing.T, src, typ, upstream string) string {
	t.Helper()
	id, err := f.svc.opts.IDs.Encode(src, typ, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// mapCache is an in-memory Cache that records the kinds it was asked for.
type mapCache struct {
	mu    sync.Mutex
	m     map[string][]byte
	kinds []cache.Kind
	hits  int
}

func (c *mapCache) PurgeTag(context.Context, string) (int, error)    { return 0, nil }
func (c *mapCache) PurgeSource(context.Context, string) (int, error) { return 0, nil }

func (c *mapCache) Fetch(ctx context.Context, key cache.Key, refresh bool, load cache.Loader) ([]byte, error) {
	k := fmt.Sprintf("%s|%s|%s|%q", key.Kind, key.Source, key.Version, key.Parts)
	c.mu.Lock()
	c.kinds = append(c.kinds, key.Kind)
	if v, ok := c.m[k]; ok && !refresh {
		c.hits++
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	v, err := load(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[k] = v
	c.mu.Unlock()
	return v, nil
}

var deClinician = Request{Requester: auth.Requester{Country: "DE", Role: "clinician", PurposeOfUse: "TREAT", Scopes: []string{"system/*.rs"}},
	Interaction: "operation", ResourceType: "Patient", Operation: "summary"}

// summaryDoc is a document taken apart for assertions.
type summaryDoc struct {
	raw     []byte
	entries map[string]map[string]any
	provs   map[string][]string
	outcome string
	comp    map[string]any
}

func takeApart(t *testing.T, b []byte) summaryDoc {
	t.Helper()
	if _, err := r4.Parse(b); err != nil {
		t.Fatalf("not valid R4: %v", err)
	}
	ck, err := conformance.NewChecker(conformance.Options{Require: true})
	if err != nil {
		t.Fatal(err)
	}
	if is := ck.Check(b); conformance.HasErrors(is) {
		t.Fatalf("does not conform: %v", is)
	}
	var bundle struct {
		Entry []struct{ Resource map[string]any }
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		t.Fatal(err)
	}
	d := summaryDoc{raw: b, entries: map[string]map[string]any{}, provs: map[string][]string{}}
	for _, e := range bundle.Entry {
		r := e.Resource
		switch rt := r["resourceType"].(string); rt {
		case "Composition":
			d.comp = r
		case "Provenance":
			target := r["target"].([]any)[0].(map[string]any)["reference"].(string)
			sys := r["entity"].([]any)[0].(map[string]any)["what"].(map[string]any)["identifier"].(map[string]any)["system"].(string)
			d.provs[target] = append(d.provs[target], sys[strings.LastIndex(sys, "/")+1:])
		case "OperationOutcome":
			js, _ := json.Marshal(r)
			d.outcome = string(js)
		default:
			d.entries[rt+"/"+r["id"].(string)] = r
		}
	}
	return d
}

func (d summaryDoc) sourcesOf(typ string) map[string]int {
	out := map[string]int{}
	for ref := range d.entries {
		if strings.HasPrefix(ref, typ+"/") {
			for _, s := range d.provs[ref] {
				out[s]++
			}
		}
	}
	return out
}

func TestSummaryResolvesAcrossSources(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, false)
	anchor := f.id(t, "a", "Patient", "pa1")
	res, b, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: anchor}, BaseURL: "https://gw.example/fhir"})
	if err != nil {
		t.Fatal(err)
	}
	d := takeApart(t, b)

	// a is the anchor; b by passport; d in a second round by b's BSN,
	// asked in both its forms; c holds two persons with the passport.
	if got := d.sourcesOf("Patient"); got["a"] != 1 || got["b"] != 1 || got["d"] != 1 || len(got) != 3 {
		t.Fatalf("Patient linked from %v, want a, b and d", got)
	}
	if f.src["e"].count() != 0 {
		t.Fatalf("the US source was contacted %d times", f.src["e"].count())
	}
	for _, s := range []string{"c", "e", "f"} {
		if strings.Contains(string(b), `"value":"`+s+`.`) || strings.Contains(string(b), "/sid/source/"+s+`"`) {
			t.Fatalf("the document holds something of source %s", s)
		}
	}
	// d was asked twice: in the first round with the passport (it does
	// not hold it), in the second with b's BSN, in both its forms.
	dq := f.src["d"].searched("Patient")
	if len(dq) != 2 || !strings.Contains(dq[1], url.QueryEscape("urn:oid:2.16.840.1.113883.2.4.6.3|999991383")) ||
		!strings.Contains(dq[1], url.QueryEscape("http://fhir.nl/fhir/NamingSystem/bsn|999991383")) {
		t.Fatalf("d was asked %q, want the passport, then both forms of the BSN", dq)
	}
	if q := f.src["a"].searched("Patient"); len(q) != 1 {
		t.Fatalf("the anchor's source must be asked once, to check the passport names nobody else there: %q", q)
	}

	// Ambiguity is a warning naming the source, never the patient.
	if len(res.Warnings) != 1 || res.Warnings[0] != (Warning{Source: "c", Code: WarnAmbiguous}) {
		t.Fatalf("warnings %+v", res.Warnings)
	}
	if !strings.Contains(d.outcome, `"code":"multiple-matches"`) || !strings.Contains(d.outcome, "source c (UA)") {
		t.Fatalf("outcome %s", d.outcome)
	}
	for _, phi := range []string{"Olena", "P1\"", "pc1", "pc2", "Other"} {
		if strings.Contains(d.outcome, phi) {
			t.Fatalf("the outcome names the patient (%s): %s", phi, d.outcome)
		}
	}
	// The source whose Patient the policy withheld leaves no trace.
	for _, w := range res.Warnings {
		if w.Source == "f" {
			t.Fatal("a withheld source shows in the warnings")
		}
	}
	if !slices.Contains(res.Contacted, "f") || slices.Contains(res.Contacted, "e") {
		t.Fatalf("contacted %v: f was asked (and withheld), e never", res.Contacted)
	}

	// The same dose from a and b is one entry with two Provenances; b's
	// dose with another lot stays apart; d's is its own.
	imm := d.sourcesOf("Immunization")
	if imm["a"] != 1 || imm["b"] != 2 || imm["d"] != 1 {
		t.Fatalf("immunization provenances %v", imm)
	}
	n := 0
	for ref := range d.entries {
		if strings.HasPrefix(ref, "Immunization/") {
			n++
			if len(d.provs[ref]) == 2 && !(slices.Contains(d.provs[ref], "a") && slices.Contains(d.provs[ref], "b")) {
				t.Fatalf("%s folds %v", ref, d.provs[ref])
			}
		}
	}
	if n != 3 {
		t.Fatalf("%d immunizations, want 3", n)
	}
	// The condition recorded from 2019 and from 2019-03 is one.
	if c := d.sourcesOf("Condition"); c["a"] != 1 || c["b"] != 1 || len(d.provs) == 0 {
		t.Fatalf("condition provenances %v", c)
	}

	// Patient merge: birth dates 1980, 1980-05-02, 1980-05-03 agree on
	// 1980-05 only; both of b's citizenships are kept; the KVNR passes to
	// the DE requester, the BSN does not.
	var pat map[string]any
	for ref, r := range d.entries {
		if strings.HasPrefix(ref, "Patient/") {
			pat = r
		}
	}
	pj, _ := json.Marshal(pat)
	if pat["birthDate"] != "1980-05" {
		t.Fatalf("birthDate %v", pat["birthDate"])
	}
	for _, want := range []string{`"code":"UA"`, `"code":"PL"`, "K100000001", "passport-UKR"} {
		if !strings.Contains(string(pj), want) {
			t.Fatalf("merged Patient lacks %s: %s", want, pj)
		}
	}
	if strings.Contains(string(pj), "999991383") {
		t.Fatalf("a Dutch BSN reached a DE requester: %s", pj)
	}
	if !strings.Contains(d.outcome, `"code":"conflict"`) || !strings.Contains(d.outcome, "1980-05-02 from b (NL)") {
		t.Fatalf("the birth date conflict is not reported: %s", d.outcome)
	}
	div := pat["text"].(map[string]any)["div"].(string)
	if !strings.Contains(div, "1980-05-02 (NL, b)") || !strings.Contains(div, "1980-05-03 (NL, d)") {
		t.Fatalf("the Patient narrative does not show both dates: %s", div)
	}

	// The narrative escapes what the sources wrote.
	var divs strings.Builder
	for _, sec := range d.comp["section"].([]any) {
		divs.WriteString(sec.(map[string]any)["text"].(map[string]any)["div"].(string))
	}
	if strings.Contains(divs.String(), "<b>Hb</b>") || !strings.Contains(divs.String(), "&lt;b&gt;Hb&lt;/b&gt; &amp; co (Hemoglobin)") {
		t.Fatalf("source text reached the narrative unescaped: %s", divs.String())
	}
	// The refrain label of every entry is on the Bundle.
	if !strings.Contains(string(b), `"code":"NORDSCLCDS"`) {
		t.Fatal("the refrain label is not carried")
	}
	// The audit sees every released record, the folded ones too.
	count := map[string]int{}
	for _, e := range res.Entries {
		count[e.Type]++
	}
	if count["Patient"] != 3 || count["Immunization"] != 4 {
		t.Fatalf("released %v", count)
	}
}

func TestSummaryTypeLevel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		identifier string
		requester  string
		anchor     string
		linked     []string
		err        error
	}{
		{"passport", "http://hl7.org/fhir/sid/passport-UKR|P1", "DE", "a", []string{"a", "b", "d"}, nil},
		{"passport, requester in NL", "http://hl7.org/fhir/sid/passport-UKR|P1", "NL", "b", []string{"a", "b", "d"}, nil},
		{"BSN in its OID form, the requester's own record first", "urn:oid:2.16.840.1.113883.2.4.6.3|999991383", "DE", "a", []string{"a", "b", "d"}, nil},
		{"German KVNR", "http://fhir.de/sid/gkv/kvid-10|K100000001", "NL", "b", []string{"a", "b", "d"}, nil},
		{"nobody holds it", "http://hl7.org/fhir/sid/passport-UKR|P9", "DE", "", nil, ErrNotFound},
		{"no system", "P1", "DE", "", nil, ErrInvalid},
		{"status-revealing", "http://nphies.sa/identifier/iqama|1", "DE", "", nil, ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLinkerFixture(t, false)
			req := deClinician
			req.Requester.Country = tt.requester
			res, b, err := f.l.Summary(context.Background(), req, SummaryRequest{Patient: PatientQuery{Identifier: tt.identifier}})
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("err %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.Patient != "Patient/"+f.id(t, tt.anchor, "Patient", "p"+tt.anchor+"1") {
				t.Fatalf("anchor %s, want the record of %s", res.Patient, tt.anchor)
			}
			got := takeApart(t, b).sourcesOf("Patient")
			for _, s := range tt.linked {
				if got[s] != 1 {
					t.Fatalf("linked %v, want %v", got, tt.linked)
				}
			}
			if len(got) != len(tt.linked) || f.src["e"].count() != 0 {
				t.Fatalf("linked %v, e asked %d times", got, f.src["e"].count())
			}
		})
	}
}

func TestSummaryAmbiguousAnchor(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, false)
	// c holds two persons with the passport: starting from one of them,
	// the passport links nothing.
	res, b, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: f.id(t, "c", "Patient", "pc1")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := takeApart(t, b).sourcesOf("Patient"); got["c"] != 1 || len(got) != 1 {
		t.Fatalf("linked %v, want c alone", got)
	}
	if len(res.Warnings) != 1 || res.Warnings[0].Code != WarnAmbiguous || res.Warnings[0].Source != "c" {
		t.Fatalf("warnings %+v", res.Warnings)
	}
}

func TestSummaryFailures(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("%w: 503", source.ErrUnavailable)
	tests := []struct {
		name   string
		down   []string
		anchor string
		check  func(t *testing.T, res *Result, err error)
	}{
		{"a linked source down", []string{"b"}, "a", func(t *testing.T, res *Result, err error) {
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(res.Warnings, Warning{Source: "b", Code: "unavailable"}) {
				t.Fatalf("warnings %+v", res.Warnings)
			}
		}},
		{"the anchor's source down", []string{"a"}, "a", func(t *testing.T, res *Result, err error) {
			var sf *SourcesFailedError
			if !errors.As(err, &sf) || sf.Timeout {
				t.Fatalf("err %v", err)
			}
		}},
		{"denied anchor", nil, "f", func(t *testing.T, res *Result, err error) {
			var de *DeniedError
			if !errors.As(err, &de) || !slices.Contains(de.Reasons, "test.consent-refused") {
				t.Fatalf("err %v", err)
			}
		}},
		{"anchor in a source that may not be asked", nil, "e", func(t *testing.T, res *Result, err error) {
			if !errors.Is(err, ErrDenied) || len(res.Contacted) != 0 {
				t.Fatalf("err %v, contacted %v", err, res.Contacted)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLinkerFixture(t, false)
			for _, s := range tt.down {
				f.src[s].fail = unavailable
			}
			res, _, err := f.l.Summary(context.Background(), deClinician,
				SummaryRequest{Patient: PatientQuery{ID: f.id(t, tt.anchor, "Patient", "p"+tt.anchor+"1")}})
			tt.check(t, res, err)
			if f.src["e"].count() != 0 {
				t.Fatal("the US source was contacted")
			}
		})
	}
	// An unknown id names nothing.
	f := newLinkerFixture(t, false)
	if _, _, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{Patient: PatientQuery{ID: "a.AAAAAAAAAAAAAAAAAAAA"}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown id: %v", err)
	}
	if _, _, err := f.l.Summary(context.Background(), deClinician, SummaryRequest{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no patient: %v", err)
	}
}

func TestSummaryResolutionIsCached(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, true)
	q := SummaryRequest{Patient: PatientQuery{Identifier: "http://hl7.org/fhir/sid/passport-UKR|P1"}}
	_, first, err := f.l.Summary(context.Background(), deClinician, q)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.cache.kinds, cache.KindResolve) {
		t.Fatalf("no resolution went through the cache: %v", f.cache.kinds)
	}
	calls := 0
	for _, s := range f.src {
		calls += s.count()
	}
	_, second, err := f.l.Summary(context.Background(), deClinician, q)
	if err != nil {
		t.Fatal(err)
	}
	after := 0
	for _, s := range f.src {
		after += s.count()
	}
	if after != calls {
		t.Fatalf("a warm summary made %d source calls", after-calls)
	}
	a, b := takeApart(t, first), takeApart(t, second)
	if len(a.entries) != len(b.entries) {
		t.Fatalf("warm summary has %d entries, cold %d", len(b.entries), len(a.entries))
	}
}

func TestEverything(t *testing.T) {
	t.Parallel()
	f := newLinkerFixture(t, false)
	req := deClinician
	req.Operation = "everything"
	res, err := f.l.Everything(context.Background(), req, EverythingRequest{Patient: PatientQuery{ID: f.id(t, "a", "Patient", "pa1")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range res.Entries {
		got = append(got, e.Source+":"+e.Type)
	}
	want := []string{"a:Patient", "a:Condition", "a:Immunization", "a:Observation",
		"b:Patient", "b:Condition", "b:Immunization", "b:Immunization", "d:Patient", "d:Immunization"}
	if !slices.Equal(got, want) {
		t.Fatalf("entries %v\nwant    %v", got, want)
	}
	prov, err := f.l.Provenance(res.Entries[1], time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if is := conformance.Check(prov); conformance.HasErrors(is) || !strings.Contains(string(prov), res.Entries[1].ID) {
		t.Fatalf("provenance %s: %v", prov, is)
	}
	only, err := f.l.Everything(context.Background(), req, EverythingRequest{Patient: PatientQuery{ID: f.id(t, "a", "Patient", "pa1")}, Types: []string{"Condition"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range only.Entries {
		if e.Type != "Patient" && e.Type != "Condition" {
			t.Fatalf("_type=Condition gave a %s", e.Type)
		}
	}
	if _, err := f.l.Everything(context.Background(), req, EverythingRequest{Patient: PatientQuery{ID: f.id(t, "a", "Patient", "pa1")}, Types: []string{"Consent"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Consent: %v", err)
	}
}
