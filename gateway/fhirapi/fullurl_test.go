package fhirapi

import (
	"regexp"
	"testing"
)

var uuidPattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkFullURLs asserts that every entry of a Bundle has a fullUrl a
// strict validator accepts: base/Type/id for what the gateway serves,
// urn:uuid:<id> (a UUID equal to the resource's id) for what has no
// address.
func checkFullURLs(t *testing.T, r response, base string) {
	t.Helper()
	entries, _ := r.json["entry"].([]any)
	for i, e := range entries {
		em := e.(map[string]any)
		res := em["resource"].(map[string]any)
		typ, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		full, _ := em["fullUrl"].(string)
		switch {
		case id == "":
			t.Errorf("entry %d (%s) has no id", i, typ)
		case full == base+"/"+typ+"/"+id:
		case full == "urn:uuid:"+id && uuidPattern.MatchString(id):
		default:
			t.Errorf("entry %d (%s/%s): fullUrl %q is neither %s/%s/%s nor urn:uuid:<its uuid id>", i, typ, id, full, base, typ, id)
		}
	}
}

func TestOutcomeEntriesHaveFullURLs(t *testing.T) {
	oo := &Outcome{ResourceType: "OperationOutcome", Issue: []Issue{{Severity: "warning", Code: "incomplete"}}}
	a, b := outcomeEntry(oo), outcomeEntry(&Outcome{ResourceType: "OperationOutcome"})
	if a.FullURL != "urn:uuid:"+oo.ID || !uuidPattern.MatchString(oo.ID) {
		t.Fatalf("fullUrl %q for id %q", a.FullURL, oo.ID)
	}
	if a.FullURL == b.FullURL {
		t.Fatal("two outcomes share a fullUrl")
	}
}
