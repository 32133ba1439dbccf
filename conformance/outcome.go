package conformance

import (
	"encoding/json"
)

// OperationOutcome renders issues as an R4 OperationOutcome in JSON. With
// no issues it holds one "information" issue saying so, since R4 requires
// at least one. Message goes to details.text, Diagnostics (which may quote
// the input) to diagnostics, Location to both location and expression.
func OperationOutcome(issues []Issue) []byte {
	type codeable struct {
		Text string `json:"text"`
	}
	type ooIssue struct {
		Severity    Severity  `json:"severity"`
		Code        string    `json:"code"`
		Details     *codeable `json:"details,omitempty"`
		Diagnostics string    `json:"diagnostics,omitempty"`
		Location    []string  `json:"location,omitempty"`
		Expression  []string  `json:"expression,omitempty"`
	}
	out := struct {
		ResourceType string    `json:"resourceType"`
		Issue        []ooIssue `json:"issue"`
	}{ResourceType: "OperationOutcome"}
	for _, i := range issues {
		oi := ooIssue{Severity: i.Severity, Code: i.Code, Diagnostics: i.Diagnostics}
		if oi.Severity == "" {
			oi.Severity = SeverityError
		}
		if oi.Code == "" {
			oi.Code = CodeProcessing
		}
		text := i.Message
		if i.Rule != "" {
			text = i.Rule + ": " + text
		}
		if text != "" {
			oi.Details = &codeable{Text: text}
		}
		if i.Location != "" {
			oi.Location = []string{i.Location}
			oi.Expression = []string{i.Location}
		}
		out.Issue = append(out.Issue, oi)
	}
	if len(out.Issue) == 0 {
		out.Issue = []ooIssue{{Severity: SeverityInformation, Code: "informational", Details: &codeable{Text: "no issues found"}}}
	}
	b, err := json.Marshal(out)
	if err != nil {
		// Only strings and slices of strings: Marshal cannot fail.
		panic("conformance: OperationOutcome: " + err.Error())
	}
	return b
}
