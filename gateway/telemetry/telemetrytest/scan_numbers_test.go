package telemetrytest

import "testing"

func TestNumbersMatchWhole(t *testing.T) {
	tests := []struct {
		name, line, needle string
		found              bool
	}{
		{"a duration holding a year", `{"duration_ms":0.619878}`, "1987", false},
		{"a year as a number", `{"year":1987}`, "1987", true},
		{"a year in text", `{"msg":"born in 1987."}`, "1987", true},
		{"a year between dashes", `{"msg":"x-1987-y"}`, "1987", true},
		{"a hex span id", `{"span_id":"1996aad110fdd1e1"}`, "1996", false},
		{"a decision UUID", `{"mhg.decision.id":"19966f9a-58e8-4e16-9b31-51ec85d7567c"}`, "1996", false},
		{"a UUID segment", `{"id":"6f9a1e2d-1996-4e16-9b31-51ec85d7567c"}`, "1996", false},
		{"a UUID needle leaks", `{"msg":"patient 8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7"}`, "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7", true},
		{"a number identifier", `{"msg":"kvnr 482017634"}`, "482017634", true},
		{"a name", `{"msg":"Seitumerova"}`, "seitumerova", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScanForPHI(nil, []byte(tt.line+"\n"), nil, []string{tt.needle})
			if (len(got) > 0) != tt.found {
				t.Fatalf("found %v, want %v", got, tt.found)
			}
		})
	}
}
