package fhirapi

import (
	"net/http"
	"testing"
	"time"
)

func TestEvaluateRequest(t *testing.T) {
	day := func(s string) time.Time { d, _ := time.Parse(time.DateOnly, s); return d }
	tests := []struct {
		name       string
		p          opParams
		start, end string
		strata     int
		status     int
	}{
		{"year", opParams{"periodStart": {"2025"}, "periodEnd": {"2025"}}, "2025-01-01", "2025-12-31", 0, 0},
		{"months", opParams{"periodStart": {"2025-02"}, "periodEnd": {"2024-02"}}, "", "", 0, http.StatusBadRequest},
		{"leap month", opParams{"periodStart": {"2024-02"}, "periodEnd": {"2024-02"}, "stratifier": {"sex", "citizenship"}}, "2024-02-01", "2024-02-29", 2, 0},
		{"date-time", opParams{"periodStart": {"2025-03-04T10:00:00Z"}, "periodEnd": {"2025-03-05"}, "reportType": {"population"}}, "2025-03-04", "2025-03-05", 0, 0},
		{"subject", opParams{"periodStart": {"2025"}, "periodEnd": {"2025"}, "subject": {"Patient/1"}}, "", "", 0, http.StatusBadRequest},
		{"subject-list", opParams{"periodStart": {"2025"}, "periodEnd": {"2025"}, "reportType": {"subject-list"}}, "", "", 0, http.StatusBadRequest},
		{"other measure", opParams{"periodStart": {"2025"}, "periodEnd": {"2025"}, "measure": {"Measure/other"}}, "", "", 0, http.StatusBadRequest},
		{"twice", opParams{"periodStart": {"2025", "2024"}, "periodEnd": {"2025"}}, "", "", 0, http.StatusBadRequest},
		{"bad month", opParams{"periodStart": {"2025-13"}, "periodEnd": {"2025"}}, "", "", 0, http.StatusBadRequest},
		{"century", opParams{"periodStart": {"1990"}, "periodEnd": {"2025"}}, "", "", 0, http.StatusBadRequest},
		{"three strata", opParams{"periodStart": {"2025"}, "periodEnd": {"2025"}, "stratifier": {"sex,age-band-5", "citizenship"}}, "", "", 0, http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sr, e := evaluateRequest(tc.p, "mhp-tb-active")
			if tc.status != 0 {
				if e == nil || e.Status != tc.status {
					t.Fatalf("error %v, want status %d", e, tc.status)
				}
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if !sr.Start.Equal(day(tc.start)) || !sr.End.Equal(day(tc.end)) || len(sr.Strata) != tc.strata {
				t.Errorf("got %v..%v %v", sr.Start, sr.End, sr.Strata)
			}
		})
	}
}

// FuzzEvaluateRequest: whatever the parameters, the answer is a request
// or a 400, never a panic.
func FuzzEvaluateRequest(f *testing.F) {
	f.Add("2025", "2025-12", "sex,age-band-who", "population")
	f.Add("2025-02-30", "20251", ",,,", "subject")
	f.Fuzz(func(t *testing.T, start, end, strata, reportType string) {
		sr, e := evaluateRequest(opParams{"periodStart": {start}, "periodEnd": {end}, "stratifier": {strata}, "reportType": {reportType}}, "m")
		if e != nil {
			if e.Status != http.StatusBadRequest {
				t.Fatalf("status %d", e.Status)
			}
			return
		}
		if sr.End.Before(sr.Start) || len(sr.Strata) > 2 {
			t.Fatalf("accepted %+v", sr)
		}
	})
}
