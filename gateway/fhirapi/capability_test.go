package fhirapi

import (
	"encoding/json"
	"net/url"
	"slices"
	"testing"

	"github.com/migrant-health/mhg/gateway/search"
)

// TestCapabilityAgreesWithSearch: the CapabilityStatement lists exactly
// the search parameters the handler accepts, and each one it lists is
// accepted under Prefer: handling=strict.
func TestCapabilityAgreesWithSearch(t *testing.T) {
	f := newFixture(t, 1)
	r := f.do(t, "GET", "/fhir/metadata", "")
	if r.status != 200 {
		t.Fatalf("metadata status %d", r.status)
	}
	var cs capabilityStatement
	if err := json.Unmarshal(r.body, &cs); err != nil {
		t.Fatal(err)
	}
	listed := map[string][]capSearchParam{}
	for _, res := range cs.Rest[0].Resource {
		listed[res.Type] = res.SearchParam
	}
	for _, typ := range servedTypes {
		params, ok := listed[typ]
		if !ok {
			t.Errorf("%s is served but not in the CapabilityStatement", typ)
			continue
		}
		var names []string
		for _, p := range params {
			names = append(names, p.Name)
			if p.Type == "" {
				t.Errorf("%s %s has no type", typ, p.Name)
			}
		}
		var want []string
		if typ == "Patient" {
			want = typeParams["Patient"]
		} else {
			want = slices.Clone(clinicalParams)
			for _, p := range search.Params(typ) {
				want = append(want, p.Name)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s lists %v, the handler accepts %v", typ, names, want)
		}
		if typ == "Patient" {
			continue
		}
		for _, p := range params {
			if p.Name == "patient" || p.Name == "subject" {
				continue
			}
			sample := map[string]string{"token": "http://loinc.org|1234-5", "date": "ge2020-01"}[p.Type]
			if sample == "" {
				t.Errorf("%s %s: no sample value for type %s", typ, p.Name, p.Type)
				continue
			}
			q := url.Values{"patient": {"p"}, p.Name: {sample}}
			sp, e := parseSearch(typ, q, true, 20, 200)
			if e != nil || sp.Query == nil {
				t.Errorf("%s?%s: listed but refused: %v", typ, q.Encode(), e)
			}
		}
		for _, key := range search.SortKeys(typ) {
			for _, k := range []string{key, "-" + key} {
				if _, e := parseSearch(typ, url.Values{"patient": {"p"}, "_sort": {k}}, true, 20, 200); e != nil {
					t.Errorf("%s _sort=%s: documented but refused: %v", typ, k, e)
				}
			}
		}
	}
}

// TestEverySearchTypeServed: a type with search definitions is served, so
// no definition is dead.
func TestEverySearchTypeServed(t *testing.T) {
	for _, typ := range search.Types() {
		if !served(typ) {
			t.Errorf("package search defines %s, which the gateway does not serve", typ)
		}
	}
	for _, typ := range servedTypes {
		if typ != "Patient" && search.Params(typ) == nil {
			t.Errorf("%s is served without search definitions", typ)
		}
	}
}
