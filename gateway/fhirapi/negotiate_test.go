package fhirapi

import (
	"net/http/httptest"
	"testing"
)

func TestNegotiate(t *testing.T) {
	tests := []struct {
		name   string
		target string
		accept []string
		ok     bool
	}{
		{"nothing", "/fhir/metadata", nil, true},
		{"fhir json", "/fhir/metadata", []string{"application/fhir+json"}, true},
		{"fhir json version", "/fhir/metadata", []string{"application/fhir+json; fhirVersion=4.0"}, true},
		{"other version", "/fhir/metadata", []string{"application/fhir+json; fhirVersion=5.0"}, false},
		{"plain json", "/fhir/metadata", []string{"application/json"}, true},
		{"any", "/fhir/metadata", []string{"text/html, */*;q=0.1"}, true},
		{"xml only", "/fhir/metadata", []string{"application/fhir+xml"}, false},
		{"json refused by q=0", "/fhir/metadata", []string{"application/fhir+json;q=0, application/fhir+xml"}, false},
		{"format json", "/fhir/metadata?_format=json", []string{"application/fhir+xml"}, true},
		{"format mime", "/fhir/metadata?_format=application/fhir%2Bjson", nil, true},
		{"format xml", "/fhir/metadata?_format=xml", nil, false},
		{"format turtle", "/fhir/metadata?_format=ttl", nil, false},
		{"garbage accept", "/fhir/metadata", []string{";;;"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tt.target, nil)
			for _, a := range tt.accept {
				r.Header.Add("Accept", a)
			}
			e := negotiate(r)
			if (e == nil) != tt.ok {
				t.Fatalf("negotiate = %v, want ok=%v", e, tt.ok)
			}
			if e != nil && e.Status != 406 {
				t.Fatalf("status %d, want 406", e.Status)
			}
		})
	}
}
