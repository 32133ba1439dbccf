package fhirapi

import (
	"fmt"

	"github.com/migrant-health/mhg/gateway/federate"
)

// sourceIssue says what a source's warning means for an answer whose
// entries are what (results, candidates): a source that failed is
// transient (or timeout), a search that stopped before the source's last
// page is incomplete, with how many pages were read.
func sourceIssue(w federate.Warning, what string) Issue {
	switch w.Code {
	case federate.WarnTruncated:
		return Issue{Severity: "warning", Code: "incomplete",
			Diagnostics: fmt.Sprintf("source %s: %s truncated after %s; the source has more, which are missing", w.Source, what, pages(w.Pages))}
	case federate.WarnNextLink:
		return Issue{Severity: "warning", Code: "incomplete",
			Diagnostics: fmt.Sprintf("source %s: %s stop after %s; its next page link leads away from the source and was not followed", w.Source, what, pages(w.Pages))}
	case federate.WarnIncomplete:
		return Issue{Severity: "warning", Code: "incomplete",
			Diagnostics: fmt.Sprintf("source %s returned resources that are not valid FHIR R4; they were left out, the rest of its %s are here", w.Source, what)}
	case federate.WarnThrottled:
		return Issue{Severity: "warning", Code: "throttled",
			Diagnostics: fmt.Sprintf("source %s asked the gateway to wait longer than the request allows (throttled); %s from it are missing, ask again later", w.Source, what)}
	case "timeout":
		return Issue{Severity: "warning", Code: "timeout",
			Diagnostics: fmt.Sprintf("source %s could not contribute (%s); %s from it are missing", w.Source, w.Code, what)}
	}
	return Issue{Severity: "warning", Code: "transient",
		Diagnostics: fmt.Sprintf("source %s could not contribute (%s); %s from it are missing", w.Source, w.Code, what)}
}

// pages says "N pages", or "the page bound" when N is not known.
func pages(n int) string {
	switch {
	case n == 1:
		return "1 page"
	case n > 1:
		return fmt.Sprintf("%d pages", n)
	}
	return "the page bound"
}
