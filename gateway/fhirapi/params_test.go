package fhirapi

import (
	"net/http"
	"net/url"
	"reflect"
	"testing"
)

func TestParseSearch(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		query   string
		strict  bool
		want    searchParams
		status  int
		errCode string
	}{
		{name: "identifier", typ: "Patient", query: "identifier=sys|val",
			want: searchParams{Values: map[string]string{"identifier": "sys|val"}, Count: 20}},
		{name: "count and offset", typ: "Patient", query: "identifier=v&_count=5&_offset=10",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 5, Offset: 10}},
		{name: "count capped", typ: "Patient", query: "identifier=v&_count=5000",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 200}},
		{name: "count zero is a count", typ: "Patient", query: "identifier=v&_count=0",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 0, SummaryCount: true}},
		{name: "summary count", typ: "Condition", query: "patient=p&_summary=count",
			want: searchParams{Values: map[string]string{"patient": "p"}, Count: 20, SummaryCount: true}},
		{name: "elements", typ: "Patient", query: "identifier=v&_elements=name,birthDate",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 20, Elements: []string{"name", "birthDate"}}},
		{name: "subject as patient", typ: "Observation", query: "subject=Patient/p1",
			want: searchParams{Values: map[string]string{"patient": "p1"}, Count: 20}},
		{name: "patient reference form", typ: "Observation", query: "patient=Patient/p1",
			want: searchParams{Values: map[string]string{"patient": "p1"}, Count: 20}},
		{name: "escaped comma", typ: "Patient", query: `identifier=a\,b`,
			want: searchParams{Values: map[string]string{"identifier": `a\,b`}, Count: 20}},
		{name: "unknown lenient", typ: "Patient", query: "identifier=v&family=x&_sort=name",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 20, Ignored: []string{"_sort", "family"}}},
		{name: "unknown strict", typ: "Patient", query: "identifier=v&family=x", strict: true, status: 400, errCode: "not-supported"},
		{name: "bad count", typ: "Patient", query: "identifier=v&_count=abc", status: 400, errCode: "value"},
		{name: "negative count", typ: "Patient", query: "identifier=v&_count=-1", status: 400, errCode: "value"},
		{name: "bad offset", typ: "Patient", query: "identifier=v&_offset=x", status: 400, errCode: "value"},
		{name: "repeated count", typ: "Patient", query: "identifier=v&_count=1&_count=2", status: 400, errCode: "invalid"},
		{name: "include blocked", typ: "Condition", query: "patient=p&_include=Condition:subject", status: 400, errCode: "not-supported"},
		{name: "revinclude blocked", typ: "Patient", query: "identifier=v&_revinclude=Provenance:target", status: 400, errCode: "not-supported"},
		{name: "has blocked", typ: "Patient", query: "_has:Observation:patient:code=1234", status: 400, errCode: "not-supported"},
		{name: "chain blocked", typ: "Condition", query: "patient.identifier=x", status: 400, errCode: "not-supported"},
		{name: "unknown modifier", typ: "Patient", query: "identifier:of-type=x", status: 400, errCode: "not-supported"},
		{name: "type modifier", typ: "Condition", query: "patient:Patient=p",
			want: searchParams{Values: map[string]string{"patient": "p"}, Count: 20}},
		{name: "AND search", typ: "Patient", query: "identifier=a&identifier=b", status: 400, errCode: "not-supported"},
		{name: "OR search", typ: "Patient", query: "identifier=a,b", status: 400, errCode: "not-supported"},
		{name: "empty value", typ: "Patient", query: "identifier=", status: 400, errCode: "invalid"},
		{name: "bad elements", typ: "Patient", query: "identifier=v&_elements=name,<x>", status: 400, errCode: "value"},
		{name: "subject not a patient", typ: "Observation", query: "subject=Group/1", status: 400, errCode: "invalid"},
		{name: "summary true lenient", typ: "Patient", query: "identifier=v&_summary=true",
			want: searchParams{Values: map[string]string{"identifier": "v"}, Count: 20, Ignored: []string{"_summary"}}},
		{name: "summary true strict", typ: "Patient", query: "identifier=v&_summary=true", strict: true, status: 400, errCode: "not-supported"},
		{name: "bad total", typ: "Patient", query: "identifier=v&_total=lots", status: 400, errCode: "value"},
		{name: "malformed name", typ: "Patient", query: "Ident%21ifier=v", status: 400, errCode: "invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, e := parseSearch(tt.typ, q, tt.strict, 20, 200)
			if tt.status != 0 {
				if e == nil || e.Status != tt.status || e.Code != tt.errCode {
					t.Fatalf("got %+v, %v; want %d %s", got, e, tt.status, tt.errCode)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestHandlingStrict(t *testing.T) {
	for _, tt := range []struct {
		prefer []string
		want   bool
	}{
		{nil, false},
		{[]string{"handling=strict"}, true},
		{[]string{"return=minimal, handling=strict"}, true},
		{[]string{"handling=lenient"}, false},
		{[]string{`HANDLING="strict"`}, true},
	} {
		h := http.Header{}
		for _, v := range tt.prefer {
			h.Add("Prefer", v)
		}
		if got := handlingStrict(h); got != tt.want {
			t.Errorf("Prefer %v: strict = %v, want %v", tt.prefer, got, tt.want)
		}
	}
}

func FuzzParseSearch(f *testing.F) {
	for _, s := range []string{
		"identifier=sys|val&_count=5", "patient=Patient/x&_elements=a,b", "_has:Observation:patient:code=1",
		"identifier=a\\,b", "subject=Patient/1&patient=2", "_count=0&_summary=count", "a.b=c", "%zz",
	} {
		f.Add("Patient", s, false)
		f.Add("Observation", s, true)
	}
	f.Fuzz(func(t *testing.T, typ, query string, strict bool) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		sp, e := parseSearch(typ, q, strict, 20, 200)
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("parse errors must be 400, got %d", e.Status)
			}
			return
		}
		if sp.Count < 0 || sp.Count > 200 || sp.Offset < 0 {
			t.Fatalf("out-of-range paging %+v", sp)
		}
		for k, v := range sp.Values {
			if v == "" {
				t.Fatalf("empty value accepted for %s", k)
			}
		}
	})
}

// TestParseClinicalSearch: the clinical parameters reach package search;
// unknown ones and unsortable _sort keys follow Prefer: handling, values
// the gateway cannot read are refused in either mode.
func TestParseClinicalSearch(t *testing.T) {
	for _, tt := range []struct {
		name, typ, query string
		strict           bool
		status           int
		errCode          string
		ignored          []string
		query2           bool // sp.Query set
	}{
		{name: "code", typ: "Condition", query: "patient=p&code=http://snomed.info/sct|1234", query2: true},
		{name: "date prefixes", typ: "Observation", query: "patient=p&date=ge2020&date=lt2021-06", query2: true},
		{name: "lastUpdated", typ: "Procedure", query: "patient=p&_lastUpdated=gt2024-01-01T00:00:00Z", query2: true},
		{name: "sort", typ: "MedicationRequest", query: "patient=p&_sort=-authoredon", query2: true},
		{name: "unknown lenient", typ: "Condition", query: "patient=p&colour=red", ignored: []string{"colour"}},
		{name: "unknown strict", typ: "Condition", query: "patient=p&colour=red", strict: true, status: 400, errCode: "not-supported"},
		{name: "sort unknown lenient", typ: "Condition", query: "patient=p&_sort=code", ignored: []string{"_sort"}},
		{name: "sort unknown strict", typ: "Condition", query: "patient=p&_sort=code", strict: true, status: 400, errCode: "not-supported"},
		{name: "sort twice", typ: "Condition", query: "patient=p&_sort=onset-date&_sort=recorded-date", status: 400, errCode: "invalid"},
		{name: "bad date", typ: "Condition", query: "patient=p&onset-date=2020-02-30", status: 400, errCode: "value"},
		{name: "bad modifier lenient", typ: "Condition", query: "patient=p&code:above=x", status: 400, errCode: "not-supported"},
		{name: "bad token", typ: "Observation", query: "patient=p&code=a|b|c", status: 400, errCode: "value"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, e := parseSearch(tt.typ, q, tt.strict, 20, 200)
			if tt.status != 0 {
				if e == nil || e.Status != tt.status || e.Code != tt.errCode {
					t.Fatalf("got %+v, %v; want %d %s", got, e, tt.status, tt.errCode)
				}
				return
			}
			if e != nil {
				t.Fatalf("unexpected error %v", e)
			}
			if !reflect.DeepEqual(got.Ignored, tt.ignored) || (got.Query != nil) != tt.query2 {
				t.Fatalf("ignored %v query %v", got.Ignored, got.Query)
			}
		})
	}
}
