package fhirapi

import (
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	f := newFixture(t, 1)
	f.h.opts.MaxBodyBytes = 1 << 20
	patient, err := os.ReadFile("testdata/validate/patient.json")
	if err != nil {
		t.Fatal(err)
	}
	// The same Patient with an Iqama (a status-revealing identifier,
	// mhp-pat-2) as its second identifier.
	revealing := strings.Replace(string(patient), `"identifier": [`,
		`"identifier": [{"system": "http://nphies.sa/identifier/iqama", "value": "2345678901"},`, 1)
	params := func(profile, resource string) string {
		return `{"resourceType":"Parameters","parameter":[{"name":"profile","valueCanonical":"` + profile + `"},{"name":"resource","resource":` + resource + `}]}`
	}
	tests := []struct {
		name, target, body string
		status             int
		// severity and code of the first issue, and a fragment of its
		// expression.
		severity, code, where string
	}{
		{"a conformant Patient", "/fhir/Patient/$validate", string(patient), 200, "information", "informational", ""},
		{"at system level", "/fhir/$validate", string(patient), 200, "information", "informational", ""},
		{"a status-revealing identifier", "/fhir/Patient/$validate", revealing, 200, "error", "invariant", "Patient.identifier[0]"},
		{"as a Parameters resource", "/fhir/$validate", params("https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-patient", revealing), 200, "error", "invariant", "Patient.identifier[0]"},
		{"checked against a profile it does not claim", "/fhir/$validate",
			params("https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-condition", string(patient)), 200, "error", "", ""},
		{"not R4", "/fhir/$validate", `{"resourceType":"Patient","birthDate":"yesterday"}`, 200, "error", "structure", ""},
		{"another type than the route's", "/fhir/Condition/$validate", string(patient), 200, "error", "structure", "Patient"},
		{"an unknown profile", "/fhir/$validate", params("https://example.org/StructureDefinition/x", string(patient)), 400, "error", "not-supported", ""},
		{"no body", "/fhir/$validate", "", 400, "error", "required", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, tt.target, strings.NewReader(tt.body))
			r.Header.Set("Authorization", "Bearer "+tokDE)
			r.Header.Set("Content-Type", "application/fhir+json")
			w := httptest.NewRecorder()
			f.h.ServeHTTP(w, r)
			resp := response{status: w.Code, header: w.Header(), body: w.Body.Bytes(), json: decode(w.Body.Bytes())}
			if resp.status != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.status, tt.status, resp.body)
			}
			fhirJSON(t, resp)
			var found bool
			for _, is := range resp.json["issue"].([]any) {
				is := is.(map[string]any)
				if is["severity"] != tt.severity || (tt.code != "" && is["code"] != tt.code) {
					continue
				}
				expr, _ := is["expression"].([]any)
				if tt.where == "" || (len(expr) == 1 && strings.HasPrefix(expr[0].(string), tt.where)) {
					found = true
				}
			}
			if !found {
				t.Fatalf("no %s %s issue at %q in %s", tt.severity, tt.code, tt.where, resp.body)
			}
			if tt.severity == "information" && strings.Contains(string(resp.body), `"error"`) {
				t.Fatalf("a conformant resource has errors: %s", resp.body)
			}
		})
	}
	t.Run("needs a token", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "/fhir/$validate", strings.NewReader(string(patient)))
		w := httptest.NewRecorder()
		f.h.ServeHTTP(w, r)
		if w.Code != http.StatusUnauthorized {
			t.Fatalf("status %d", w.Code)
		}
	})
}
