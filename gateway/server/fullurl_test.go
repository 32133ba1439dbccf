package server

import (
	"regexp"
	"testing"
)

var uuidID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// checkFullURLs asserts that every entry of a Bundle answer has a fullUrl
// a strict validator accepts: the gateway's base/Type/id, or urn:uuid:<id>
// for what has no address (Provenances, the outcome).
func checkFullURLs(t testing.TB, g *gateway, r reply) {
	t.Helper()
	entries, _ := r.json["entry"].([]any)
	for i, e := range entries {
		em := e.(map[string]any)
		res, _ := em["resource"].(map[string]any)
		typ, _ := res["resourceType"].(string)
		id, _ := res["id"].(string)
		full, _ := em["fullUrl"].(string)
		if id == "" || (full != g.base+"/"+typ+"/"+id && (full != "urn:uuid:"+id || !uuidID.MatchString(id))) {
			t.Errorf("entry %d (%s/%s): fullUrl %q", i, typ, id, full)
		}
	}
}
