package authz

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	t.Parallel()
	doc := readTestdata(t, "inputs/release-cross-border-consent.json")
	x, err := Explain(context.Background(), "", doc)
	if err != nil {
		t.Fatal(err)
	}
	if !x.Decision.Allow || !slices.Equal(x.Decision.Agreements, []string{"de-nl-2024", "de-nl-ua-2025"}) {
		t.Errorf("decision = %+v", x.Decision)
	}
	var text strings.Builder
	x.Write(&text)
	for _, want := range []string{"decision: ALLOW (revision demo-2025.2)", "agreement.cross-border.permitted", "label R, NOREUSE, NORDSCLCDS (firewall.migstat.labels)", "rules that fired:", "mhg/authz/agreements.rego:"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("explanation lacks %q:\n%s", want, text.String())
		}
	}
	basis := x.Fired[0]
	if basis.Reason != "agreement.cross-border.permitted" || basis.File != "mhg/authz/agreements.rego" || !strings.HasPrefix(basis.Head, `basis contains "agreement.cross-border.permitted"`) {
		t.Errorf("first fired rule = %+v, want the basis rule", basis)
	}
}

func TestExplainDenial(t *testing.T) {
	t.Parallel()
	doc := strings.Replace(string(readTestdata(t, "inputs/release-cross-border-consent.json")), `"purpose_of_use": "TREAT"`, `"purpose_of_use": "GOV"`, 1)
	x, err := Explain(context.Background(), "", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if x.Decision.Allow {
		t.Fatal("GOV allowed to read migration status")
	}
	fired := map[string]FiredRule{}
	for _, f := range x.Fired {
		if f.Reason != "" {
			fired[f.Reason] = f
		}
	}
	for _, r := range x.Decision.Reasons {
		if r == "agreement.cross-border.purpose-not-covered" || strings.HasPrefix(r, "firewall.") || strings.HasPrefix(r, "purpose.") {
			f, ok := fired[r]
			if !ok {
				t.Errorf("reason %s has no fired rule; fired: %+v", r, x.Fired)
				continue
			}
			if f.Line == 0 || !strings.Contains(f.Head, r) {
				t.Errorf("fired rule for %s = %+v", r, f)
			}
		}
	}
	if _, ok := fired["firewall.migstat.purpose-forbidden"]; !ok {
		t.Error("the firewall rule did not fire")
	}
}

func TestEngineExplainMatchesDecide(t *testing.T) {
	t.Parallel()
	e := builtinEngine(t)
	in := releaseInput(clinician("DE"), clinical("Condition", "HIV"), "UA")
	x, err := e.Explain(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	d := decide(t, e, in)
	x.Decision.ID, d.ID = "", ""
	if !slices.Equal(x.Decision.Reasons, d.Reasons) || x.Decision.Allow != d.Allow || len(x.Decision.Obligations) != len(d.Obligations) {
		t.Errorf("explain %+v, decide %+v", x.Decision, d)
	}
}

func TestExplainRejectsBadInput(t *testing.T) {
	t.Parallel()
	if _, err := Explain(context.Background(), "", []byte(`{"phase": "query", "patient": {"gender": "female"}}`)); !errors.Is(err, ErrInput) {
		t.Errorf("err = %v, want ErrInput", err)
	}
	if _, err := Explain(context.Background(), "/nonexistent", readTestdata(t, "inputs/query-audit.json")); err == nil {
		t.Error("Explain accepted a missing policy directory")
	}
}
