package authz

import (
	"errors"
	"strings"
	"testing"
)

func TestPatientMatchValidation(t *testing.T) {
	t.Parallel()
	doc := []any{map[string]any{
		"id": "de-nl", "title": "t", "kind": "bilateral", "parties": []any{"DE", "NL"},
		"purposes": []any{"TREAT"}, "data_classes": []any{"C"}, "resource_types": []any{"*"},
		"valid_from": "2025-01-01", "valid_until": "2026-01-01", "obligations": []any{},
		"patient_match": map[string]any{
			"purposes":     []any{"COC"},
			"lowest_grade": "likely",
			"traits": map[string]any{
				"FR": map[string]any{"required": []any{}, "allowed": []any{"family"}},
				"DE": map[string]any{"required": []any{"family", "birthDate"}, "allowed": []any{"family", "shoeSize"}},
				"NL": map[string]any{"required": []any{}, "allowed": []any{}},
			},
		},
	}}
	_, err := parseAgreements(doc)
	if !errors.Is(err, ErrAgreements) {
		t.Fatalf("err = %v, want ErrAgreements", err)
	}
	for _, want := range []string{
		`patient_match.purposes: "COC" is not one of the agreement's purposes`,
		`patient_match.lowest_grade: want certain, probable or possible, got "likely"`,
		`patient_match.traits.FR: "FR" is not a party`,
		`patient_match.traits.DE: "shoeSize" is not a trait kind`,
		`patient_match.traits.DE.required: "birthDate" is required but not allowed to be sent`,
		`patient_match.traits.NL.allowed: name the trait kinds`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestPatientMatchIndexed(t *testing.T) {
	t.Parallel()
	list := []Agreement{{ID: "a", Parties: []string{"DE", "NL"}, Purposes: []string{"TREAT"}, ValidFrom: "2025-01-01", ValidUntil: "2025-12-31",
		PatientMatch: &PatientMatch{Purposes: []string{"TREAT"}, LowestGrade: "probable",
			Traits: map[string]TraitRules{"NL": {Required: []string{"family"}, Allowed: []string{"family", "given"}}}}}}
	a := indexAgreements(list)["agreements"].(map[string]any)["a"].(map[string]any)
	pm, ok := a["patient_match"].(map[string]any)
	if !ok {
		t.Fatal("patient_match not indexed")
	}
	if pm["lowest_grade"] != "probable" || pm["purposes"].(map[string]any)["TREAT"] != true {
		t.Errorf("patient_match indexed as %v", pm)
	}
	nl := pm["traits"].(map[string]any)["NL"].(map[string]any)
	if len(nl["allowed"].([]any)) != 2 || nl["required"].([]any)[0] != "family" {
		t.Errorf("NL rules indexed as %v", nl)
	}
	if _, ok := indexAgreements([]Agreement{{ID: "b", Parties: []string{"DE", "NL"}, ValidFrom: "2025-01-01", ValidUntil: "2025-12-31"}})["agreements"].(map[string]any)["b"].(map[string]any)["patient_match"]; ok {
		t.Error("an agreement without patient_match got one in the index")
	}
}

func TestMatchObligationParsed(t *testing.T) {
	t.Parallel()
	got, err := obligationList([]any{map[string]any{"kind": "match", "traits": []any{"family", "given"}, "required": []any{"family"}, "grade": "probable", "rule": "match.domestic"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Grade != "probable" || strings.Join(got[0].Traits, ",") != "family,given" || strings.Join(got[0].Required, ",") != "family" {
		t.Errorf("parsed %+v", got)
	}
	if _, err := obligationList([]any{map[string]any{"kind": "match", "traits": []any{"family"}, "rule": "x"}}); err == nil {
		t.Error("a match obligation without a grade was accepted")
	}
}
