package fhirapi

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/search"
)

// searchParams is a parsed search request.
type searchParams struct {
	// Values holds the type's own search parameters, one value each.
	Values map[string]string
	// Count is the page size; Offset the first entry of the page.
	Count, Offset int
	// SummaryCount is set for _summary=count (and _count=0).
	SummaryCount bool
	// Elements lists the _elements asked for; nil means all.
	Elements []string
	// Ignored lists unknown parameters skipped under lenient handling.
	Ignored []string
	// Query holds the clinical search criteria and _sort (package
	// search), evaluated on the released resources before paging; nil
	// when the request has none.
	Query *search.Query
}

// typeParams lists the search parameters each type supports.
var typeParams = map[string][]string{
	"Patient":    {"identifier", "_id"},
	"AuditEvent": auditParams,
}

// clinicalParams are the search parameters of every patient-compartment
// type the gateway serves.
var clinicalParams = []string{"patient", "subject"}

// tokenParams are the search parameters of type token (system|value).
var tokenParams = map[string]bool{"identifier": true, "purpose": true, "outcome": true}

// checkToken answers 400 for a token search value the gateway cannot read,
// before any source is asked: the client's mistake is never a source's
// failure. The message names the parameter, never the value.
func checkToken(name, v string) *Error {
	if err := r4.CheckToken(v); err != nil {
		return errorf(http.StatusBadRequest, "invalid", "parameter %s: the value %s", name, err)
	}
	return nil
}

// resultParams are parameters that shape results rather than select them.
var resultParams = map[string]bool{
	"_count": true, "_offset": true, "_summary": true, "_elements": true,
	"_format": true, "_pretty": true, "_total": true,
}

// joinParams pull in resources the policy has not decided on; refused.
var joinParams = map[string]bool{
	"_include": true, "_revinclude": true, "_has": true, "_contained": true, "_containedType": true,
}

var (
	elementName = regexp.MustCompile(`^[a-z][A-Za-z0-9]*$`)
	paramName   = regexp.MustCompile(`^_?[a-z][A-Za-z0-9-]*$`)
)

// handlingStrict reports whether the client asked for strict handling of
// unknown parameters (Prefer: handling=strict); FHIR's default is lenient.
func handlingStrict(h http.Header) bool {
	for _, v := range h.Values("Prefer") {
		for _, part := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
			if strings.EqualFold(strings.TrimSpace(k), "handling") && strings.EqualFold(strings.Trim(strings.TrimSpace(val), `"`), "strict") {
				return true
			}
		}
	}
	return false
}

// parseSearch validates and parses a search query for resourceType.
// Messages never quote parameter values (they may be identifiers).
func parseSearch(resourceType string, q url.Values, strict bool, defCount, maxCount int) (searchParams, *Error) {
	allowed := typeParams[resourceType]
	if allowed == nil {
		allowed = clinicalParams
	}
	sp := searchParams{Values: map[string]string{}, Count: defCount}
	names := make([]string, 0, len(q))
	for k := range q {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, raw := range names {
		vals := q[raw]
		name, modifier, hasMod := strings.Cut(raw, ":")
		if joinParams[name] {
			return sp, errorf(http.StatusBadRequest, "not-supported", "search parameter %s is not supported: it would pull in resources outside the patient's released data", name)
		}
		if strings.Contains(name, ".") {
			return sp, errorf(http.StatusBadRequest, "not-supported", "chained search parameters are not supported")
		}
		if !paramName.MatchString(name) {
			return sp, errorf(http.StatusBadRequest, "invalid", "malformed search parameter name")
		}
		if resultParams[name] {
			if hasMod {
				return sp, errorf(http.StatusBadRequest, "not-supported", "parameter %s takes no modifier", name)
			}
			if len(vals) != 1 {
				return sp, errorf(http.StatusBadRequest, "invalid", "parameter %s may appear only once", name)
			}
			if e := sp.result(name, vals[0], strict, maxCount); e != nil {
				return sp, e
			}
			continue
		}
		if !slices.Contains(allowed, name) && search.Params(resourceType) != nil && name != "_id" {
			if e := sp.criterion(resourceType, name, modifier, hasMod, vals, strict); e != nil {
				return sp, e
			}
			continue
		}
		if !slices.Contains(allowed, name) {
			if strict {
				return sp, errorf(http.StatusBadRequest, "not-supported", "unknown search parameter %s for %s", name, resourceType)
			}
			sp.Ignored = append(sp.Ignored, name)
			continue
		}
		if hasMod && !(modifier == "Patient" && (name == "patient" || name == "subject")) {
			// FHIR: servers shall reject unsupported modifiers, in any mode.
			return sp, errorf(http.StatusBadRequest, "not-supported", "modifier :%s is not supported on %s", modifier, name)
		}
		if len(vals) != 1 {
			return sp, errorf(http.StatusBadRequest, "not-supported", "repeating %s (AND search) is not supported", name)
		}
		v := vals[0]
		if v == "" {
			return sp, errorf(http.StatusBadRequest, "invalid", "parameter %s has no value", name)
		}
		// Values stay escaped (FHIR search syntax) for whoever reads them:
		// a source is sent them as they are.
		if len(r4.SplitEscaped(v, ',')) > 1 {
			return sp, errorf(http.StatusBadRequest, "not-supported", "OR searches (comma-separated values) are not supported on %s", name)
		}
		if tokenParams[name] {
			if e := checkToken(name, v); e != nil {
				return sp, e
			}
		}
		if name == "subject" {
			ref, ok := strings.CutPrefix(v, "Patient/")
			if !ok {
				return sp, errorf(http.StatusBadRequest, "invalid", "subject must reference a Patient")
			}
			name, v = "patient", ref
		}
		if name == "patient" {
			v = strings.TrimPrefix(v, "Patient/")
		}
		if _, dup := sp.Values[name]; dup {
			return sp, errorf(http.StatusBadRequest, "invalid", "patient and subject given together")
		}
		sp.Values[name] = v
	}
	if sp.Query.Empty() {
		sp.Query = nil
	}
	return sp, nil
}

// criterion reads a clinical search parameter or _sort into sp.Query
// (package search holds the definitions). Unknown parameters and _sort
// keys follow Prefer: handling; a known parameter with a value or modifier
// the gateway cannot evaluate is refused in either mode, as FHIR asks.
func (sp *searchParams) criterion(typ, name, modifier string, hasMod bool, vals []string, strict bool) *Error {
	if sp.Query == nil {
		sp.Query = search.New(typ)
	}
	var err error
	switch {
	case name == "_sort" && hasMod:
		err = fmt.Errorf("%w: _sort takes no modifier", search.ErrUnsupported)
	case name == "_sort" && len(vals) != 1:
		return errorf(http.StatusBadRequest, "invalid", "parameter _sort may appear only once")
	case name == "_sort":
		err = sp.Query.ParseSort(vals[0])
		if errors.Is(err, search.ErrUnsupported) && !strict {
			sp.Ignored = append(sp.Ignored, name)
			return nil
		}
	default:
		for _, v := range vals {
			if err = sp.Query.Parse(name, modifier, v); err != nil {
				break
			}
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, search.ErrUnknown):
		if strict {
			return errorf(http.StatusBadRequest, "not-supported", "unknown search parameter %s for %s", name, typ)
		}
		sp.Ignored = append(sp.Ignored, name)
		return nil
	case errors.Is(err, search.ErrInvalid):
		return errorf(http.StatusBadRequest, "value", "%v", err)
	default:
		return errorf(http.StatusBadRequest, "not-supported", "%v", err)
	}
}

func (sp *searchParams) result(name, v string, strict bool, maxCount int) *Error {
	switch name {
	case "_count":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "value", "_count must be a non-negative integer")
		}
		if n == 0 {
			sp.SummaryCount = true
		}
		sp.Count = min(n, maxCount)
	case "_offset":
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, "value", "_offset must be a non-negative integer")
		}
		sp.Offset = n
	case "_summary":
		switch v {
		case "count":
			sp.SummaryCount = true
		case "false":
		default:
			if strict {
				return errorf(http.StatusBadRequest, "not-supported", "_summary supports count and false")
			}
			sp.Ignored = append(sp.Ignored, "_summary")
		}
	case "_elements":
		var els []string
		for _, e := range strings.Split(v, ",") {
			e = strings.TrimSpace(e)
			if !elementName.MatchString(e) {
				return errorf(http.StatusBadRequest, "value", "_elements must list element names")
			}
			els = append(els, e)
		}
		sp.Elements = els
	case "_total":
		switch v {
		case "none", "estimate", "accurate":
		default:
			return errorf(http.StatusBadRequest, "value", "_total must be none, estimate or accurate")
		}
	}
	return nil
}
