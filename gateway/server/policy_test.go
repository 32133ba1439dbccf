package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/examples"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/policies"
)

// The policies through the whole gateway: real tokens, real OPA with the
// shipped policies, real national sources over HTTP that count what they
// are asked, the real audit log and decision log. Each subtest is one
// "Done when" item of the policy issue.

// Upstream ids of the resources in testdata/de-policy (README.md there).
const (
	lenaPatient     = "26d35279-8f62-5eaa-860b-971a51fbfcf3" // Consent: deny everything
	lenaCondition   = "0f77f71d-fcd0-5a7f-b417-ab95c7705baf"
	jonasPatient    = "57491738-aa06-5d90-a44b-527a5ede5f4c" // Consent: deny for NL actors
	jonasCondition  = "859c3b13-b0a0-543b-8786-ad389cc7e805"
	amalPatient     = "df1aa9ce-1008-5153-b745-4f1767002524" // Consent: MIGSTAT for TREAT (DE, NL)
	amalRefugee     = "da0e9fca-cea2-54cc-973f-f9fb65e4af58" // LOINC 93027-1: class S
	mehmetPatient   = "a74c2fa2-f81b-5ca8-83dc-4741e9668406" // sensitive labels; Consent: PSY for DE TREAT
	mehmetHIV       = "dc1a9bda-de3f-5705-82e9-9315050842e1"
	mehmetPSY       = "6b20e11e-a7be-528c-b1ac-a79d1cc9730c"
	mehmetSUD       = "400dd3fd-244a-52e0-a2ad-49737470370a"
	mehmetETH       = "e8c6b5eb-5624-5483-9fe5-a026a5fc98ea"
	mehmetSTD       = "dfad57ab-a84c-5a3d-84e3-fff337ef5274"
	mehmetSEX       = "879faa74-6d7d-5e1b-9385-28bb144299c0"
	mehmetSDV       = "7a181d8e-4655-5903-ac4e-242fd2cb4749"
	mehmetPlain     = "48feb62f-c5d3-5ab3-b53f-edf6de52afe2"
	mehmetHIVGM     = "97967d30-f67c-5991-b304-87e492b95ba4"                  // ICD-10-GM B23.0 only
	mehmetPSYGM     = "d7f0c6fa-5ba9-5b97-88e4-57d552c3122e"                  // ICD-10-GM F20.0 only
	mehmetRefugee   = "a5303c2a-87a2-53e1-8ab2-12ca78a42ca7"                  // LOINC 93027-1, no consent
	priyaMRN        = "https://fhir.leeds-teaching.example/Id/mrn|LTH2281734" // gb-policy, MIGSTAT for GB TREAT
	ahmadMRN        = "https://fhir.leeds-teaching.example/Id/mrn|LTH2290551" // gb-policy, MIGSTAT "for GOV"
	marcosSSN       = "http://hl7.org/fhir/sid/us-ssn|999-68-5158"            // us-sample
	fatimaBSN       = "urn:oid:2.16.840.1.113883.2.4.6.3|999991565"           // nl-sample
	dePolicyPIDSys  = "https://fhir.klinikum-test.example/sid/patienten-id|"
	migstatSecurity = `"code":"MIGSTAT"`
)

// Notes written on labelled resources of Mehmet: none may leave unless the
// patient's consent names the label for the requester.
var sensitiveNotes = map[string]string{
	"HIV": "Diagnosis disclosed to partner on request",
	"PSY": "discussed trauma history",
	"SUD": "motivated to reduce",
	"ETH": "Harm reduction counselling offered",
	"STD": "Treated with ceftriaxone",
	"SEX": "Fertility counselling requested",
	"SDV": "Examination after reported assault",
}

// newRecordingServer serves a folder of FHIR bundles (a directory, or
// config.BuiltinPrefix and a sample name) as a national FHIR server that
// counts the requests it gets.
func newRecordingServer(t testing.TB, dir string) *nationalServer {
	t.Helper()
	// The same translation as the gateway's turns builtin:<name> into a
	// built-in folder.
	opts := sourceOptions(config.Source{ID: "upstream", Country: "XX", Profile: "x", Kind: config.KindBundle, Dir: dir}, 0)
	opts.Builtin, opts.Logger = examples.FS, slog.New(slog.DiscardHandler)
	b, err := source.OpenBundle(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns := &nationalServer{}
	ns.mode.Store("")
	ns.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ns.requests.Add(1)
		ns.serve(w, r, b)
	}))
	t.Cleanup(ns.Close)
	return ns
}

func testdataDir(t testing.TB, name string) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// queryBypass stands for a query phase that someone configured wrongly: when
// on, it lets every source be contacted, so that the release phase alone
// must hold the firewall.
type queryBypass struct {
	next federate.Decider
	on   *atomic.Bool
}

var _ federate.Decider = queryBypass{}

func (q queryBypass) Decide(ctx context.Context, in authz.Input) (authz.Decision, error) {
	d, err := q.next.Decide(ctx, in)
	if q.on.Load() && in.Phase == authz.PhaseQuery && in.Source != nil {
		d.Allow, d.Reasons = true, []string{"test.query-bypassed"}
	}
	return d, err
}

// policyEnv is a gateway over the sources of the policy tests:
//
//	de-policy  DE de-basis  FHIR server over testdata/de-policy (recording)
//	nl-lsp     NL nl-core   FHIR server over the built-in nl-sample (recording)
//	us-ehr     US us-core   FHIR server over the built-in us-sample (recording)
//	gb-policy  GB uk-core   bundle folder testdata/gb-policy
type policyEnv struct {
	g          *gateway
	de, nl, us *nationalServer
	bypass     atomic.Bool
	notes      *notifySink
}

// notifySink is the inbox of audit.notify_url: it keeps every notification
// the gateway posts.
type notifySink struct {
	*httptest.Server
	mu  sync.Mutex
	raw [][]byte
}

func newNotifySink(t testing.TB) *notifySink {
	t.Helper()
	n := &notifySink{}
	n.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		n.mu.Lock()
		n.raw = append(n.raw, b)
		n.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	}))
	t.Cleanup(n.Close)
	return n
}

// received returns the notifications posted so far.
func (n *notifySink) received(t testing.TB) ([]audit.Notification, [][]byte) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []audit.Notification
	for _, b := range n.raw {
		var note audit.Notification
		if err := json.Unmarshal(b, &note); err != nil {
			t.Fatalf("notification %s: %v", b, err)
		}
		out = append(out, note)
	}
	return out, slices.Clone(n.raw)
}

func startPolicyEnv(t *testing.T) *policyEnv {
	t.Helper()
	env := &policyEnv{
		de:    newRecordingServer(t, testdataDir(t, "de-policy")),
		nl:    newRecordingServer(t, config.BuiltinPrefix+"nl-sample"),
		us:    newRecordingServer(t, config.BuiltinPrefix+"us-sample"),
		notes: newNotifySink(t),
	}
	decisionLog := filepath.Join(t.TempDir(), "decisions.jsonl")
	env.g = startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{
			{ID: "de-policy", Country: "DE", Profile: "de-basis", Kind: config.KindFHIR, BaseURL: env.de.URL},
			{ID: "nl-lsp", Country: "NL", Profile: "nl-core", Kind: config.KindFHIR, BaseURL: env.nl.URL},
			{ID: "us-ehr", Country: "US", Profile: "us-core", Kind: config.KindFHIR, BaseURL: env.us.URL},
			{ID: "gb-policy", Country: "GB", Profile: "uk-core", Kind: config.KindBundle, Dir: testdataDir(t, "gb-policy")},
		}
		// Every request reaches the sources, so the counts mean something.
		c.Cache.Disabled = true
		c.Policy.DecisionLog = decisionLog
		c.Audit.NotifyURL = env.notes.URL
	}, Options{WrapDecider: func(d federate.Decider) federate.Decider { return queryBypass{next: d, on: &env.bypass} }})
	return env
}

// contacts returns how many requests each recording source has had.
func (env *policyEnv) contacts() [3]int64 {
	return [3]int64{env.de.requests.Load(), env.nl.requests.Load(), env.us.requests.Load()}
}

// id is the gateway id of an upstream resource of a source.
func (g *gateway) id(t testing.TB, src, typ, upstream string) string {
	t.Helper()
	codec, err := idCodec(g.cfg, federate.IDTableOptions{})
	if err != nil {
		t.Fatal(err)
	}
	id, err := codec.Encode(src, typ, upstream)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// rules returns the policy rule ids an OperationOutcome lists.
func (r reply) rules() []string {
	var out []string
	issues, _ := r.json["issue"].([]any)
	for _, is := range issues {
		details, _ := is.(map[string]any)["details"].(map[string]any)
		codings, _ := details["coding"].([]any)
		for _, c := range codings {
			out = append(out, c.(map[string]any)["code"].(string))
		}
	}
	return out
}

// types counts the match entries of a searchset by resource type.
func (r reply) types() map[string]int {
	out := map[string]int{}
	for _, e := range r.entries("match") {
		out[e["resourceType"].(string)]++
	}
	return out
}

// patientRoutes are every route that releases a patient's data: searches,
// reads, the operations, with the patient's gateway id and an identifier.
func patientRoutes(pid, identifier string, reads ...string) []string {
	routes := []string{
		"/Patient?identifier=" + identifier,
		"/Patient/" + pid,
		"/Patient?_id=" + pid,
		"/Patient/" + pid + "/$everything",
		"/Patient/" + pid + "/$summary",
		"/Patient/$summary?identifier=" + identifier,
	}
	for _, typ := range servedTypes {
		if typ != "Patient" {
			routes = append(routes, "/"+typ+"?patient="+pid)
		}
	}
	return append(routes, reads...)
}

// classSRoutes are the routes that can carry a patient's class S data: the
// migration context split off a Patient, or an Observation classed S.
func classSRoutes(pid, identifier string, reads ...string) []string {
	return append([]string{
		"/Patient?identifier=" + identifier,
		"/Observation?patient=" + pid,
		"/Patient/" + pid + "/$everything",
		"/Patient/" + pid + "/$summary",
	}, reads...)
}

// servedTypes are the resource types the gateway serves (fhirapi).
var servedTypes = []string{"Patient", "Condition", "AllergyIntolerance", "Immunization", "MedicationStatement",
	"MedicationRequest", "Observation", "Procedure"}

// auditEvents returns the AuditEvents of the gateway's audit log, oldest
// first (the log is written before a response leaves).
func auditEvents(t testing.TB, g *gateway) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(g.cfg.Audit.Log)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec struct {
			Event map[string]any `json:"event"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("audit line: %v", err)
		}
		out = append(out, rec.Event)
	}
	return out
}

// auditDecision is a policy decision as an AuditEvent records it.
type auditDecision struct {
	ID, Phase, Source, Rules, BreakGlass string
	Allow                                bool
}

func decisionsOf(ev map[string]any) []auditDecision {
	var out []auditDecision
	ents, _ := ev["entity"].([]any)
	for _, e := range ents {
		em := e.(map[string]any)
		if em["name"] != "policy decision" {
			continue
		}
		var d auditDecision
		details, _ := em["detail"].([]any)
		for _, x := range details {
			xm := x.(map[string]any)
			v, _ := xm["valueString"].(string)
			switch xm["type"] {
			case "decision-id":
				d.ID = v
			case "phase":
				d.Phase = v
			case "source":
				d.Source = v
			case "allow":
				d.Allow = v == "true"
			case "rule-ids":
				d.Rules = v
			case "break-glass":
				d.BreakGlass = v
			}
		}
		out = append(out, d)
	}
	return out
}

func purposesOf(ev map[string]any) []string {
	var out []string
	ps, _ := ev["purposeOfEvent"].([]any)
	for _, p := range ps {
		for _, c := range p.(map[string]any)["coding"].([]any) {
			out = append(out, c.(map[string]any)["code"].(string))
		}
	}
	return out
}

// logEntry is one line of the policy decision log.
type logEntry struct {
	DecisionID string          `json:"decision_id"`
	Input      authz.Input     `json:"input"`
	Result     authz.Decision  `json:"result"`
	Raw        json.RawMessage `json:"-"`
}

func decisionLog(t testing.TB, g *gateway) []logEntry {
	t.Helper()
	b, err := os.ReadFile(g.cfg.Policy.DecisionLog)
	if err != nil {
		t.Fatal(err)
	}
	var out []logEntry
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var e logEntry
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("decision log line: %v", err)
		}
		e.Raw = line
		out = append(out, e)
	}
	return out
}

func breakGlass(m *auth.MintOptions) { m.BreakGlass = true }

func TestPolicyOverHTTP(t *testing.T) {
	t.Parallel()
	env := startPolicyEnv(t)
	g := env.g
	de := func(typ, upstream string) string { return g.id(t, "de-policy", typ, upstream) }
	lena, jonas, amal, mehmet := de("Patient", lenaPatient), de("Patient", jonasPatient), de("Patient", amalPatient), de("Patient", mehmetPatient)

	// Gateway ids of patients in the other sources, found as their own
	// country's clinicians find them.
	findOne := func(t *testing.T, country, identifier string) string {
		t.Helper()
		r := g.get(t, "/Patient?identifier="+identifier, g.token(t, country, "clinician", "TREAT"))
		ps := r.types()
		if r.status != 200 || ps["Patient"] != 1 {
			t.Fatalf("%s finding %s: %d %v", country, identifier, r.status, ps)
		}
		for _, e := range r.entries("match") {
			if e["resourceType"] == "Patient" {
				return e["id"].(string)
			}
		}
		return ""
	}
	marcos := findOne(t, "US", marcosSSN)
	priya := findOne(t, "GB", priyaMRN)
	ahmad := findOne(t, "GB", ahmadMRN)

	t.Run("no purpose, no data, on every route", func(t *testing.T) {
		for _, who := range [][2]string{{"DE", "clinician"}, {"NL", "clinician"}, {"DE", "auditor"}, {"DE", "researcher"}} {
			tok := g.token(t, who[0], who[1], "")
			before := env.contacts()
			routes := append(patientRoutes(amal, dePolicyPIDSys+"PID-T-0003", "/Condition/"+de("Condition", jonasCondition)),
				"/AuditEvent?patient=Patient/"+amal)
			for _, path := range routes {
				r := g.get(t, path, tok)
				if r.status != 403 || r.outcomeCode(t) != "forbidden" || !slices.Contains(r.rules(), "purpose.missing") {
					t.Errorf("%s %s without a purpose, %s: %d %v %s", who[0], who[1], path, r.status, r.rules(), r.body)
				}
			}
			if after := env.contacts(); after != before {
				t.Errorf("%v: a source was contacted without a purpose: %v -> %v", who, before, after)
			}
		}
	})

	t.Run("firewall purposes get nothing, class S least of all", func(t *testing.T) {
		// The patients with class S data: Amal (MIGSTAT consent for TREAT),
		// Mehmet (no consent), Priya (UK charging category, consent for GB
		// TREAT), Ahmad (a consent that names GOV and HLEGAL: the firewall
		// holds against it), Marcos (US refugee screening).
		type target struct{ pid, identifier, country string }
		targets := []target{
			{amal, dePolicyPIDSys + "PID-T-0003", "DE"}, {mehmet, dePolicyPIDSys + "PID-T-0004", "DE"},
			{priya, priyaMRN, "GB"}, {ahmad, ahmadMRN, "GB"}, {marcos, marcosSSN, "US"},
		}
		reads := []string{"/Observation/" + de("Observation", amalRefugee), "/Observation/" + de("Observation", mehmetRefugee)}
		forbidden := []string{"GOV", "HLEGAL", "FRAUD", "COVAUTH", "ELIGDTRM", "ELIGVER", "POARCH"}
		// The query phase sees no patient: each purpose meets one target.
		for i, purpose := range forbidden {
			for _, tg := range []target{targets[i%len(targets)]} {
				tok := g.token(t, tg.country, "clinician", purpose)
				before := env.contacts()
				for _, path := range patientRoutes(tg.pid, tg.identifier, reads...) {
					r := g.get(t, path, tok)
					if r.status != 403 || !slices.Contains(r.rules(), "firewall.query.purpose-forbidden") {
						t.Errorf("%s from %s, %s: %d %v", purpose, tg.country, path, r.status, r.rules())
					}
					if bytes.Contains(r.body, []byte(migstatSecurity)) {
						t.Errorf("%s, %s: MIGSTAT data released: %s", purpose, path, r.body)
					}
				}
				if after := env.contacts(); after != before {
					t.Errorf("%s: a source was asked about a person for a forbidden purpose: %v -> %v", purpose, before, after)
				}
			}
		}

		// The control: the same routes, for treatment, do release class S
		// data where the consent allows it, so the scan above could see it.
		r := g.get(t, "/Observation?patient="+priya, g.token(t, "GB", "clinician", "TREAT"))
		if r.status != 200 || !bytes.Contains(r.body, []byte(migstatSecurity)) {
			t.Fatalf("control: GB TREAT should get Priya's migration context: %d %s", r.status, r.body)
		}

		// With the query phase bypassed, the release phase alone still
		// withholds class S from every forbidden purpose, even for Ahmad,
		// whose consent names GOV and HLEGAL: every purpose on the
		// Observation search, GOV and HLEGAL also on every other route that
		// can carry class S.
		env.bypass.Store(true)
		t.Cleanup(func() { env.bypass.Store(false) })
		start := len(auditEvents(t, g))
		for _, purpose := range forbidden {
			for _, tg := range targets {
				tok := g.token(t, tg.country, "clinician", purpose)
				routes := []string{"/Observation?patient=" + tg.pid}
				if (purpose == "GOV" || purpose == "HLEGAL") && (tg.pid == ahmad || tg.pid == amal) {
					routes = classSRoutes(tg.pid, tg.identifier, reads...)
				}
				for _, path := range routes {
					r := g.get(t, path, tok)
					if r.status == 200 && len(r.entries("match")) > 0 || r.status == 200 && r.json["resourceType"] != "Bundle" {
						t.Errorf("%s, query bypassed, %s: released %v", purpose, path, r.types())
					}
					if bytes.Contains(r.body, []byte(migstatSecurity)) || bytes.Contains(r.body, []byte("migration-context")) {
						t.Errorf("%s, query bypassed, %s: class S released: %s", purpose, path, r.body)
					}
				}
			}
		}
		// The release phase saw the class S resources and refused them by
		// the firewall rule, not by accident.
		seen := map[string]bool{}
		for _, ev := range auditEvents(t, g)[start:] {
			for _, d := range decisionsOf(ev) {
				if d.Phase == "release" && !d.Allow && strings.Contains(d.Rules, "firewall.migstat.purpose-forbidden") {
					seen[d.Source] = true
				}
				if d.Phase == "release" && d.Allow {
					t.Errorf("a release was allowed for a forbidden purpose: %+v", d)
				}
			}
		}
		for _, src := range []string{"de-policy", "gb-policy", "us-ehr"} {
			if !seen[src] {
				t.Errorf("no class S release from %s was refused by firewall.migstat.purpose-forbidden", src)
			}
		}
	})

	t.Run("no agreement: the foreign source is not even asked", func(t *testing.T) {
		// Germany and the Netherlands have no agreement with the United
		// States or the United Kingdom.
		for _, country := range []string{"DE", "NL"} {
			tok := g.token(t, country, "clinician", "TREAT")
			for _, tg := range []struct{ pid, identifier, src string }{{marcos, marcosSSN, "us-ehr"}, {priya, priyaMRN, "gb-policy"}} {
				before := env.contacts()
				for _, path := range patientRoutes(tg.pid, tg.identifier) {
					r := g.get(t, path, tok)
					if bytes.Contains(r.body, []byte(tg.src+".")) {
						t.Errorf("%s, %s: data of %s released: %s", country, path, tg.src, r.body)
					}
					if r.status == 200 && len(r.entries("match")) > 0 || r.status == 200 && r.json["type"] != "searchset" {
						t.Errorf("%s, %s: released %s", country, path, r.body)
					}
					if strings.HasPrefix(path, "/Patient/"+tg.pid) && (r.status != 403 || !slices.Contains(r.rules(), "agreement.cross-border.no-agreement")) {
						t.Errorf("%s, %s: %d %v", country, path, r.status, r.rules())
					}
				}
				after := env.contacts()
				if after[2] != before[2] {
					t.Errorf("%s: the US source was contacted %d times without an agreement", country, after[2]-before[2])
				}
			}
		}
		// The other way round: a US clinician does not reach Germany or
		// the Netherlands.
		before := env.contacts()
		us := g.token(t, "US", "clinician", "TREAT")
		for _, path := range append(patientRoutes(amal, dePolicyPIDSys+"PID-T-0003"), "/Patient?identifier="+fatimaBSN) {
			r := g.get(t, path, us)
			if bytes.Contains(r.body, []byte("de-policy.")) || bytes.Contains(r.body, []byte("nl-lsp.")) {
				t.Errorf("US, %s: European data released: %s", path, r.body)
			}
		}
		if after := env.contacts(); after[0] != before[0] || after[1] != before[1] {
			t.Errorf("a US request reached DE or NL: %v -> %v", before, after)
		}

		// With an agreement the foreign source is asked, and answers.
		before = env.contacts()
		r := g.get(t, "/Patient?identifier="+fatimaBSN, g.token(t, "DE", "clinician", "TREAT"))
		if after := env.contacts(); after[1] == before[1] || r.status != 200 || sourcesOf(r.entries("match"))["nl-lsp"] != 1 {
			t.Fatalf("DE -> NL under de-nl-2024: contacted %d times, %d %s", after[1]-before[1], r.status, r.body)
		}
	})

	t.Run("with an agreement, the patient's deny wins", func(t *testing.T) {
		nl, nlCOC, deTreat := g.token(t, "NL", "clinician", "TREAT"), g.token(t, "NL", "clinician", "COC"), g.token(t, "DE", "clinician", "TREAT")
		cases := []struct {
			name, token, pid, identifier string
			condition                    string
			released                     bool
		}{
			{"Lena denies everyone: NL", nl, lena, "PID-T-0001", lenaCondition, false},
			{"Lena denies everyone: DE (domestic)", deTreat, lena, "PID-T-0001", lenaCondition, false},
			{"Jonas denies NL: NL TREAT", nl, jonas, "PID-T-0002", jonasCondition, false},
			{"Jonas denies NL: NL COC", nlCOC, jonas, "PID-T-0002", jonasCondition, false},
			{"Jonas denies NL: DE is not affected", deTreat, jonas, "PID-T-0002", jonasCondition, true},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := env.contacts()
				cond := de("Condition", tc.condition)
				for _, path := range patientRoutes(tc.pid, dePolicyPIDSys+tc.identifier, "/Condition/"+cond) {
					r := g.get(t, path, tc.token)
					isRead := strings.HasPrefix(path, "/Patient/"+tc.pid) && !strings.Contains(path, "$") || strings.HasPrefix(path, "/Condition/")
					switch {
					case tc.released && r.status != 200:
						t.Errorf("%s: %d %s", path, r.status, r.body)
					case tc.released && strings.HasPrefix(path, "/Condition?") && r.types()["Condition"] != 1:
						t.Errorf("%s: %v", path, r.types())
					case !tc.released && isRead && (r.status != 403 || !slices.Contains(r.rules(), "consent.patient-deny")):
						t.Errorf("%s: want 403 consent.patient-deny, got %d %v", path, r.status, r.rules())
					case !tc.released && (r.status == 200 && len(r.entries("match")) > 0 || r.status == 200 && r.json["type"] != "searchset"):
						t.Errorf("%s: released despite the patient's deny: %s", path, r.body)
					}
				}
				// The agreement let the gateway ask the source; the consent
				// stopped the release.
				if env.contacts()[0] == before[0] {
					t.Error("the source was not asked, so the consent was never read")
				}
			})
		}
	})

	t.Run("MIGSTAT only with the patient's permit, for the purpose it names", func(t *testing.T) {
		amalCtx := "/Observation/" + de("Observation", amalRefugee)
		mehmetCtx := "/Observation/" + de("Observation", mehmetRefugee)
		cases := []struct {
			name, country, purpose, path string
			released                     bool
			rule                         string
		}{
			{"Amal's permit names NL TREAT", "NL", "TREAT", amalCtx, true, ""},
			{"Amal's permit names DE TREAT", "DE", "TREAT", amalCtx, true, ""},
			{"Amal's permit does not name COC", "NL", "COC", amalCtx, false, "firewall.migstat.consent-missing"},
			{"Amal's permit does not name UA", "UA", "TREAT", amalCtx, false, "firewall.migstat.consent-missing"},
			{"Mehmet gave no permit", "DE", "TREAT", mehmetCtx, false, "firewall.migstat.consent-missing"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				tok := g.token(t, tc.country, "clinician", tc.purpose)
				r := g.get(t, tc.path, tok)
				if tc.released {
					sec, _ := json.Marshal(r.json["meta"])
					if r.status != 200 || !bytes.Contains(sec, []byte(`"MIGSTAT"`)) || !bytes.Contains(sec, []byte(`"NOREUSE"`)) {
						t.Fatalf("%d %s", r.status, r.body)
					}
					return
				}
				if r.status != 403 || !slices.Contains(r.rules(), tc.rule) {
					t.Fatalf("want 403 %s, got %d %v", tc.rule, r.status, r.rules())
				}
			})
		}
		// In searches: the Observation search includes the migration
		// context exactly when the read does.
		for _, tc := range []struct {
			country, purpose, pid string
			want                  bool
		}{
			{"NL", "TREAT", amal, true}, {"NL", "COC", amal, false}, {"DE", "TREAT", mehmet, false},
			{"GB", "TREAT", priya, true}, {"GB", "COC", priya, false}, {"US", "TREAT", marcos, false},
		} {
			r := g.get(t, "/Observation?patient="+tc.pid, g.token(t, tc.country, "clinician", tc.purpose))
			if got := bytes.Contains(r.body, []byte(migstatSecurity)); r.status != 200 || got != tc.want {
				t.Errorf("%s %s Observation?patient=%s: status %d, migration context released %v, want %v", tc.country, tc.purpose, tc.pid, r.status, got, tc.want)
			}
			// Class S data enters a patient summary only on the same terms.
			s := g.get(t, "/Patient/"+tc.pid+"/$summary", g.token(t, tc.country, "clinician", tc.purpose))
			if bytes.Contains(s.body, []byte(migstatSecurity)) && !tc.want {
				t.Errorf("%s %s: class S in the summary of %s", tc.country, tc.purpose, tc.pid)
			}
		}
		// Whoever is refused the migration context learns nothing of it,
		// not even from the mapping's loss reports: that the patient had a
		// UK charging category, or answered the refugee question.
		for _, tc := range []struct{ country, purpose, pid, identifier string }{
			{"GB", "COC", priya, priyaMRN}, {"DE", "TREAT", mehmet, dePolicyPIDSys + "PID-T-0004"},
		} {
			tok := g.token(t, tc.country, "clinician", tc.purpose)
			for _, path := range classSRoutes(tc.pid, tc.identifier) {
				r := g.get(t, path, tok)
				for _, hint := range []string{"migration-context", "OverseasVisitorChargingCategory", "93027-1", "refugee", migstatSecurity} {
					if bytes.Contains(r.body, []byte(hint)) {
						t.Errorf("%s %s, %s: the answer mentions %q: %s", tc.country, tc.purpose, path, hint, r.body)
					}
				}
			}
		}
	})

	t.Run("break the glass: released, audited, notified", func(t *testing.T) {
		auditor := g.token(t, "DE", "auditor", "HCOMPL")
		cases := []struct {
			name, country, purpose string
			glass                  bool
			pid                    string
			status                 int
			rule                   string
		}{
			{"NL ETREAT with the glass broken overrides Jonas's deny (de-nl-ua-2025)", "NL", "ETREAT", true, jonas, 200, ""},
			{"DE ETREAT with the glass broken overrides Lena's deny (German law)", "DE", "ETREAT", true, lena, 200, ""},
			{"ETREAT without the flag: the deny holds", "NL", "ETREAT", false, jonas, 403, "consent.patient-deny"},
			{"the flag without ETREAT is refused", "NL", "TREAT", true, jonas, 403, "break-glass.requires-etreat"},
			{"no agreement, no glass to break", "US", "ETREAT", true, jonas, 403, "agreement.cross-border.no-agreement"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				var edit []func(*auth.MintOptions)
				if tc.glass {
					edit = append(edit, breakGlass)
				}
				tok := g.token(t, tc.country, "clinician", tc.purpose, edit...)
				notesBefore, _ := env.notes.received(t)
				r := g.get(t, "/Patient/"+tc.pid, tok)
				evs := auditEvents(t, g)
				readEvent := evs[len(evs)-1]
				if r.status != tc.status {
					t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
				}
				if tc.rule != "" && !slices.Contains(r.rules(), tc.rule) {
					t.Fatalf("want %s among %v", tc.rule, r.rules())
				}
				if tc.status != 200 {
					// Nothing was disclosed, so nobody is notified (the
					// refusal is in the audit trail).
					time.Sleep(100 * time.Millisecond)
					if after, _ := env.notes.received(t); len(after) != len(notesBefore) {
						t.Fatalf("a refused request was notified: %v", after[len(notesBefore):])
					}
					return
				}
				// The notification reaches audit.notify_url: it names the
				// read's AuditEvent, the targets and the rule, and no
				// patient data.
				var note audit.Notification
				eventually(t, 10*time.Second, "the break-the-glass notification", func() (bool, string) {
					notes, raw := env.notes.received(t)
					for i, n := range notes {
						if n.AuditEventID == readEvent["id"] {
							note = n
							if bytes.Contains(raw[i], []byte(tc.pid)) || bytes.Contains(raw[i], []byte("PID-T-")) {
								t.Errorf("the notification carries patient data: %s", raw[i])
							}
							return true, ""
						}
					}
					return false, fmt.Sprintf("%d notifications, none for AuditEvent %v", len(notes), readEvent["id"])
				})
				if !slices.Contains(note.Targets, "patient") || !slices.Contains(note.Targets, "privacy-officer") ||
					!slices.Equal(note.Rules, []string{"break-glass.notify"}) || !note.BreakGlass ||
					note.RequesterCountry != tc.country || note.Purpose != "ETREAT" {
					t.Errorf("notification %+v", note)
				}
				if c := g.get(t, "/Condition?patient="+tc.pid, tok); c.status != 200 || c.types()["Condition"] != 1 {
					t.Fatalf("conditions under break-the-glass: %d %v", c.status, c.types())
				}
				// The auditor finds the access under BTG, with the rules
				// that allowed it.
				a := g.get(t, "/AuditEvent?purpose=BTG&patient=Patient/"+tc.pid, auditor)
				if a.status != 200 || len(a.entries("match")) < 2 {
					t.Fatalf("BTG audit search: %d %s", a.status, a.body)
				}
				var release []auditDecision
				for _, ev := range a.entries("match") {
					if ps := purposesOf(ev); !slices.Contains(ps, "ETREAT") || !slices.Contains(ps, "BTG") {
						t.Errorf("purposeOfEvent %v", ps)
					}
					for _, d := range decisionsOf(ev) {
						if d.BreakGlass != "true" {
							t.Errorf("decision without the break-glass detail: %+v", d)
						}
						if d.Phase == "release" && d.Allow {
							release = append(release, d)
						}
					}
				}
				if len(release) == 0 {
					t.Fatal("no allowed release decision in the BTG AuditEvents")
				}
				for _, d := range release {
					if !strings.Contains(d.Rules, "break-glass.invoked") || !strings.Contains(d.Rules, "break-glass.consent-overridden") {
						t.Errorf("release rules %q", d.Rules)
					}
				}
				// The decision log holds the obligation to notify the
				// patient and the privacy officer, under the decision id the
				// AuditEvent names.
				byID := map[string]logEntry{}
				for _, e := range decisionLog(t, g) {
					byID[e.DecisionID] = e
				}
				for _, d := range release {
					e, ok := byID[d.ID]
					if !ok {
						t.Fatalf("decision %s is audited but not in the decision log", d.ID)
					}
					targets := map[string]bool{}
					for _, o := range e.Result.Obligations {
						if o.Kind == authz.ObligationNotify && o.Rule == "break-glass.notify" {
							targets[o.Target] = true
						}
					}
					if !targets["patient"] || !targets["privacy-officer"] {
						t.Errorf("decision %s: notify obligations %v in %s", d.ID, targets, e.Raw)
					}
				}
			})
		}
	})

	t.Run("redaction obligations on the JSON that leaves", func(t *testing.T) {
		nl, deTreat := g.token(t, "NL", "clinician", "TREAT"), g.token(t, "DE", "clinician", "TREAT")

		// Across the border, the Patient keeps only the gateway pseudonym.
		p := g.get(t, "/Patient/"+mehmet, nl)
		ids, _ := json.Marshal(p.json["identifier"])
		if p.status != 200 || !hasLabel(p.json, "REDACTED") || bytes.Contains(ids, []byte("T100000004")) || bytes.Contains(ids, []byte("PID-T-0004")) {
			t.Fatalf("cross-border Patient: %d %s", p.status, p.body)
		}
		var idents []map[string]any
		_ = json.Unmarshal(ids, &idents)
		if len(idents) != 1 || idents[0]["system"] != conformance.SIDGatewayPseudonym || idents[0]["value"] != mehmet {
			t.Fatalf("cross-border identifiers: %s", ids)
		}
		// At home, the national identifiers stay and nothing was redacted.
		home := g.get(t, "/Patient/"+mehmet, deTreat)
		if hids, _ := json.Marshal(home.json["identifier"]); home.status != 200 || !bytes.Contains(hids, []byte("T100000004")) || hasLabel(home.json, "REDACTED") {
			t.Fatalf("domestic Patient: %d %s", home.status, home.body)
		}

		// Sensitive labels: every element policies/data/redaction.json
		// lists for the label goes (notes; for SDV the performer too); the
		// resource says it was redacted and is restricted. Mehmet's consent
		// names PSY for German treatment, so that one stays whole at home.
		resources := map[string]struct {
			typ, upstream string
			keptAtHome    bool
		}{
			"HIV": {"Condition", mehmetHIV, false}, "PSY": {"Condition", mehmetPSY, true},
			"SUD": {"Condition", mehmetSUD, false}, "ETH": {"Condition", mehmetETH, false},
			"STD": {"Condition", mehmetSTD, false}, "SEX": {"Condition", mehmetSEX, false},
			"SDV": {"Observation", mehmetSDV, false},
		}
		for label, paths := range redactionPaths(t) {
			tc, ok := resources[label]
			if !ok {
				t.Errorf("redaction.json names label %s, which no resource in testdata/de-policy carries", label)
				continue
			}
			for _, who := range []struct {
				name, token string
				kept        bool
			}{{"NL", nl, false}, {"DE", deTreat, tc.keptAtHome}} {
				r := g.get(t, "/"+tc.typ+"/"+de(tc.typ, tc.upstream), who.token)
				if r.status != 200 || !hasLabel(r.json, label) {
					t.Fatalf("%s %s: %d %s", who.name, label, r.status, r.body)
				}
				if got := bytes.Contains(r.body, []byte(sensitiveNotes[label])); got != who.kept {
					t.Errorf("%s, %s: note released %v, want %v: %s", who.name, label, got, who.kept, r.body)
				}
				if who.kept {
					continue
				}
				for _, p := range paths {
					if el := strings.TrimPrefix(p, "*."); r.json[el] != nil {
						t.Errorf("%s, %s: %s was released: %s", who.name, label, p, r.body)
					}
				}
				if !hasLabel(r.json, "REDACTED") || !hasLabel(r.json, "R") {
					t.Errorf("%s, %s: want the REDACTED and R labels: %s", who.name, label, r.body)
				}
			}
		}
		// The source did hold every note and the SDV performer: their
		// absence above is the redaction's doing.
		src := readFile(t, filepath.Join(testdataDir(t, "de-policy"), "sensitive.json"))
		for label, note := range sensitiveNotes {
			if !strings.Contains(src, note) {
				t.Errorf("the %s note is not in the test data", label)
			}
		}
		if !strings.Contains(src, "Forensic outpatient clinic") {
			t.Error("the SDV observation in the test data has no performer")
		}
		// An unlabelled resource is released whole.
		plain := g.get(t, "/Condition/"+de("Condition", mehmetPlain), nl)
		if plain.status != 200 || hasLabel(plain.json, "REDACTED") || !bytes.Contains(plain.body, []byte("Home blood pressure log reviewed")) {
			t.Fatalf("plain condition: %d %s", plain.status, plain.body)
		}

		// Every other route releases the same redacted JSON: no labelled
		// note reaches the NL clinician however it is asked for.
		for _, path := range patientRoutes(mehmet, dePolicyPIDSys+"PID-T-0004") {
			r := g.get(t, path, nl)
			// A local record number does not link a patient across the
			// border, so the summary by identifier finds no one (404).
			if r.status != 200 && !(r.status == 404 && strings.Contains(path, "$summary?identifier")) {
				t.Errorf("%s: %d %s", path, r.status, r.body)
			}
			for label, note := range sensitiveNotes {
				if bytes.Contains(r.body, []byte(note)) {
					t.Errorf("%s: the %s note left the country", path, label)
				}
			}
		}
	})
}

// A Patient search answers with Patients. What a mapping splits off a
// Patient (its class S migration context, an Observation) is reached by its
// own read and by Observation searches, never as a match of a Patient
// search, where it would also inflate Bundle.total and the audited count of
// released Patients' searches.
func TestPatientSearchMatchesPatientsOnly(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "gb-policy", Country: "GB", Profile: "uk-core", Kind: config.KindBundle, Dir: testdataDir(t, "gb-policy")}}
	}, Options{})
	// Priya's consent lets GB treatment see her migration context.
	tok := g.token(t, "GB", "clinician", "TREAT")
	r := g.get(t, "/Patient?identifier="+priyaMRN, tok)
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if got := r.types(); got["Patient"] != 1 || len(got) != 1 || r.json["total"] != float64(1) {
		t.Errorf("Patient search matches %v (total %v), want one Patient", got, r.json["total"])
	}
	for _, e := range r.entries("match") {
		if e["resourceType"] != "Patient" {
			continue
		}
		obs := g.get(t, "/Observation?patient="+e["id"].(string), tok)
		if obs.status != 200 || !bytes.Contains(obs.body, []byte(migstatSecurity)) {
			t.Errorf("the migration context is not reached by the Observation search: %d %s", obs.status, obs.body)
		}
	}
}

// A diagnosis coded only in a national code system is as sensitive as its
// WHO ICD-10 counterpart: German HIV and psychiatric diagnoses, coded in
// ICD-10-GM alone as German systems code them, must carry the HIV and PSY
// labels, so that their notes do not cross the border.
func TestNationalCodesGetSensitivityLabels(t *testing.T) {
	t.Parallel()
	g := startGateway(t, func(c *config.Config) {
		c.Sources = []config.Source{{ID: "de-policy", Country: "DE", Profile: "de-basis", Kind: config.KindBundle, Dir: testdataDir(t, "de-policy")}}
	}, Options{})
	nl := g.token(t, "NL", "clinician", "TREAT")
	for _, tc := range []struct{ label, upstream, note string }{
		{"HIV", mehmetHIVGM, "partner notification pending"},
		{"PSY", mehmetPSYGM, "First episode during asylum procedure"},
	} {
		r := g.get(t, "/Condition/"+g.id(t, "de-policy", "Condition", tc.upstream), nl)
		if r.status != 200 {
			t.Fatalf("%s: %d %s", tc.label, r.status, r.body)
		}
		if !hasLabel(r.json, tc.label) || bytes.Contains(r.body, []byte(tc.note)) {
			t.Errorf("an ICD-10-GM %s diagnosis crossed the border without its label, note and all: %s", tc.label, r.body)
		}
	}
}

// redactionPaths reads what the shipped policies redact for each sensitive
// label (policies/data/redaction.json).
func redactionPaths(t testing.TB) map[string][]string {
	t.Helper()
	b, err := fs.ReadFile(policies.FS, "data/redaction.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Redaction struct {
			Labels map[string]struct {
				Paths []string `json:"paths"`
			} `json:"labels"`
		} `json:"redaction"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for label, l := range doc.Redaction.Labels {
		out[label] = l.Paths
	}
	if len(out) < 7 {
		t.Fatalf("redaction.json names %d labels", len(out))
	}
	return out
}

// hasLabel reports whether a resource's meta.security has a code.
func hasLabel(res map[string]any, code string) bool {
	meta, _ := res["meta"].(map[string]any)
	sec, _ := meta["security"].([]any)
	for _, s := range sec {
		if s.(map[string]any)["code"] == code {
			return true
		}
	}
	return false
}
