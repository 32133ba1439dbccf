package federate

import (
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
)

// When a policy withholds an allergy's contained asserter, the reference
// to it keeps only its display, the loss report says so, and dom-3 holds.
func TestResolveContainedAfterRedaction(t *testing.T) {
	t.Parallel()
	cr, err := r4.Parse([]byte(`{"resourceType":"AllergyIntolerance","id":"a1","patient":{"reference":"Patient/p1"},` +
		`"code":{"text":"penicillin"},"asserter":{"reference":"#rp1","display":"mother"},` +
		`"contained":[{"resourceType":"RelatedPerson","id":"rp1","patient":{"reference":"Patient/p1"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if n := containedCount(cr); n != 1 {
		t.Fatalf("containedCount = %d, want 1", n)
	}
	if err := authz.Apply(cr, []authz.Obligation{{Kind: authz.ObligationRedact, Paths: []string{"AllergyIntolerance.contained"}}}); err != nil {
		t.Fatal(err)
	}
	if n := containedCount(cr); n != 0 {
		t.Fatalf("containedCount after the redaction = %d, want 0", n)
	}
	out, loss, err := resolveContained(cr)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r4.Marshal(out)
	if err != nil {
		t.Fatal(err)
	}
	if v := r4.ContainedViolations(b); v != nil {
		t.Errorf("dom-3 violated: %q in %s", v, b)
	}
	if !strings.Contains(string(b), `"asserter":{"display":"mother"}`) {
		t.Errorf("asserter is not display-only: %s", b)
	}
	if len(loss) != 1 || loss[0].Path != "AllergyIntolerance.asserter.reference" || loss[0].Code != "incomplete" {
		t.Errorf("loss = %+v", loss)
	}
	// Nothing to repair: the same resource comes back.
	if again, loss, err := resolveContained(out); err != nil || len(loss) != 0 || again != out {
		t.Errorf("a resource without dangling references was changed: %v %v", loss, err)
	}
}
