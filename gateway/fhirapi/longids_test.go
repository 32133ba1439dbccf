package fhirapi

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/source"
)

// Ids as real national servers write them: any [A-Za-z0-9\-\.]{1,64}.
const (
	longPatient = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" // 64
	longCond48  = "urn-oid-1.2.276.0.76.4.8-condition-0000000000042"                 // 48
	longCond64  = "Condition.2.16.840.1.113883.3.7418.20.1-0000000000000000000000AB" // 64
	longImm48   = "immunization-00000000-0000-0000-0000-00000000004"                 // 48
)

// A source whose every id is long, paging one entry at a time: every
// read, search and patient-level operation finds every record, and the
// references inside the resources use the same gateway ids.
func TestLongUpstreamIDs(t *testing.T) {
	for _, id := range []string{longPatient, longCond48, longCond64, longImm48} {
		if !fhirIDLike(id) || (len(id) != 48 && len(id) != 64) {
			t.Fatalf("fixture id %q (%d)", id, len(id))
		}
	}
	fs := newFHIRServer(t, 1,
		patientJSON(longPatient, "LONG1"),
		conditionJSON(longCond48, longPatient),
		conditionJSON(longCond64, longPatient),
		fmt.Sprintf(`{"resourceType":"Immunization","id":%q,"status":"completed","vaccineCode":{"text":"MMR"},"patient":{"reference":"Patient/%s"},"occurrenceDateTime":"2020-01-01"}`, longImm48, longPatient),
	)
	// A 16-character source id leaves a sealed id room for about 30.
	g := newRealGateway(t, source.Options{ID: "de-national-ehr1", BaseURL: fs.base()})

	r := g.do(t, "GET", "/fhir/Patient?identifier="+url.QueryEscape("http://hl7.org/fhir/sid/passport-UKR|LONG1"), tokDE)
	ok200(t, r)
	got := matches(r)
	if len(got) != 1 {
		t.Fatalf("patients %v: %s", got, r.body)
	}
	pid := got[0]
	if len(pid) > 64 || strings.Contains(pid, longPatient[:16]) {
		t.Fatalf("patient id %q", pid)
	}

	byID := g.do(t, "GET", "/fhir/Patient?_id="+pid, tokDE)
	ok200(t, byID)
	if ids := matches(byID); len(ids) != 1 || ids[0] != pid || byID.json["total"].(float64) != 1 {
		t.Fatalf("Patient?_id: %v %s", ids, byID.body)
	}
	read := g.do(t, "GET", "/fhir/Patient/"+pid, tokDE)
	if read.status != 200 || read.json["id"] != pid {
		t.Fatalf("read: %d %s", read.status, read.body)
	}

	conds := g.do(t, "GET", "/fhir/Condition?patient="+pid, tokDE)
	ok200(t, conds)
	condIDs := matches(conds)
	if len(condIDs) != 2 {
		t.Fatalf("conditions %v: %s", condIDs, conds.body)
	}
	for _, e := range conds.json["entry"].([]any) {
		res := e.(map[string]any)["resource"].(map[string]any)
		if res["resourceType"] == "Condition" && res["subject"].(map[string]any)["reference"] != "Patient/"+pid {
			t.Fatalf("reference %v, want Patient/%s", res["subject"], pid)
		}
	}
	for _, id := range condIDs {
		if r := g.do(t, "GET", "/fhir/Condition/"+id, tokDE); r.status != 200 || r.json["id"] != id {
			t.Fatalf("read Condition/%s: %d %s", id, r.status, r.body)
		}
	}

	imm := g.do(t, "GET", "/fhir/Immunization?patient="+pid, tokDE)
	ok200(t, imm)
	if ids := matches(imm); len(ids) != 1 {
		t.Fatalf("immunizations %v: %s", ids, imm.body)
	}

	ev := g.do(t, "GET", "/fhir/Patient/"+pid+"/$everything", tokDE)
	ok200(t, ev)
	evIDs := matches(ev)
	for _, id := range append(condIDs, pid, matches(imm)[0]) {
		if !slices.Contains(evIDs, id) {
			t.Fatalf("$everything lacks %s: %v", id, evIDs)
		}
	}

	sum := g.do(t, "GET", "/fhir/Patient/"+pid+"/$summary", tokDE)
	if sum.status != 200 || sum.json["type"] != "document" {
		t.Fatalf("$summary: %d %.500s", sum.status, sum.body)
	}
	fhirJSON(t, sum)
	for _, want := range []string{"asthma", "MMR"} {
		if !strings.Contains(string(sum.body), want) {
			t.Fatalf("$summary lacks %s: %.2000s", want, sum.body)
		}
	}
	if strings.Contains(string(sum.body), "could not contribute") {
		t.Fatalf("$summary warns: %.2000s", sum.body)
	}
}

// ok200 asserts a 200 searchset or resource, valid R4, with fullUrls and
// no warning.
func ok200(t *testing.T, r response) {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	fhirJSON(t, r)
	checkFullURLs(t, r, "http://gw.test/fhir")
	if issues := searchOutcomeIssues(t, r); len(issues) != 0 {
		t.Fatalf("issues %v", issues)
	}
}

func fhirIDLike(s string) bool {
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.") == "" && len(s) <= 64
}
