package conformance

import "testing"

func TestHasErrors(t *testing.T) {
	if HasErrors(nil) || HasErrors([]Issue{{Severity: SeverityWarning}}) {
		t.Error("warnings are not errors")
	}
	if !HasErrors([]Issue{{Severity: SeverityWarning}, {Severity: SeverityFatal}}) {
		t.Error("fatal is an error")
	}
}
