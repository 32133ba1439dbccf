package authz

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/measures"
)

func TestStatisticsTermsValidation(t *testing.T) {
	t.Parallel()
	doc := []any{map[string]any{
		"id": "de-nl", "title": "t", "kind": "bilateral", "parties": []any{"DE", "NL"},
		"purposes": []any{"HRESCH"}, "data_classes": []any{"C"}, "resource_types": []any{"*"},
		"valid_from": "2025-01-01", "valid_until": "2026-01-01", "obligations": []any{},
		"statistics": map[string]any{
			"measures": []any{"Mhp TB"}, "strata": []any{"sex", "religion"},
			"k": 1, "protected_k": 5, "grain": "week", "rounding": -5,
		},
	}}
	_, err := parseAgreements(doc)
	if !errors.Is(err, ErrAgreements) {
		t.Fatalf("err = %v, want ErrAgreements", err)
	}
	for _, want := range []string{
		`statistics: measures: "Mhp TB" is not a Measure id`,
		`statistics: strata: "religion" is not in the strata catalogue`,
		`statistics: k: want at least 2`,
		`statistics: grain: want month, quarter or year, got "week"`,
		`statistics: rounding: want 0 (none)`,
		`statistics: the agreement must cover the aggregate data class`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := parseDomesticStatistics(map[string]any{"domestic": map[string]any{"measures": []any{"m"}, "grain": "month", "k": 10, "protected_k": 5}}); !errors.Is(err, ErrStatistics) || !strings.Contains(err.Error(), "protected_k: 5 is below k 10") {
		t.Errorf("domestic terms with protected_k below k: %v", err)
	}
	if _, err := parseDomesticStatistics(map[string]any{"domestc": map[string]any{}}); !errors.Is(err, ErrStatistics) {
		t.Errorf("a misspelt key passed: %v", err)
	}
}

// The strata agreements may name are the catalogue the evaluator has.
func TestStatisticsStrataAreTheCatalogue(t *testing.T) {
	t.Parallel()
	var codes []string
	for _, s := range measures.Strata() {
		codes = append(codes, s.Code)
	}
	if !slices.Equal(codes, StatisticsStrata) {
		t.Errorf("StatisticsStrata = %v, the catalogue has %v", StatisticsStrata, codes)
	}
}

// The built-in policies decide statistics through the engine: the Go input
// and obligation types and the Rego paths agree.
func TestStatisticsDecisions(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	researcher := clinician("DE")
	researcher.Role, researcher.PurposeOfUse = "researcher", "HRESCH"
	researcher.Scopes = []string{"system/Measure.rs", "system/MeasureReport.rs"}
	in := func(country string, strata ...Stratum) Input {
		return Input{Phase: PhaseQuery, Requester: researcher,
			Action:     Action{Interaction: "operation", ResourceType: "Measure", Operation: "evaluate-measure"},
			Source:     &Source{ID: strings.ToLower(country) + "-sample", Country: country},
			Statistics: &Statistics{Measure: "mhp-hiv-diagnoses", Protected: true, Strata: strata, PeriodMonths: 12}}
	}
	d := decide(t, e, in("DE", Stratum{Code: "sex", Class: "P"}, Stratum{Code: "migration-status", Class: "S"}))
	if !d.Allow || len(d.Obligations) != 1 {
		t.Fatalf("domestic: %+v", d)
	}
	if o := d.Obligations[0]; o.Kind != ObligationStatistics || o.K != 15 || o.Grain != "month" || o.Rule != "statistics.terms.domestic" {
		t.Errorf("domestic obligation %+v", o)
	}
	d = decide(t, e, in("NL", Stratum{Code: "sex", Class: "P"}))
	if !d.Allow || len(d.Obligations) != 1 || d.Obligations[0].K != 20 || d.Obligations[0].Rounding != 5 || d.Obligations[0].Grain != "quarter" {
		t.Fatalf("cross-border: %+v", d)
	}
	d = decide(t, e, in("NL", Stratum{Code: "migration-status", Class: "S"}))
	if d.Allow || !slices.Contains(d.Reasons, "statistics.migration-status-stratum-not-allowed") {
		t.Errorf("migration status abroad: %+v", d)
	}
}
