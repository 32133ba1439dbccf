package authz

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Agreement is one data-sharing agreement as the legal team writes it in
// policies/data/agreements.json. The engine validates every agreement when
// it loads the policies and indexes them for lookup (see indexAgreements).
type Agreement struct {
	// ID is a stable, lower-case identifier (a-z, 0-9, '.', '-'); it appears
	// in decisions, audit records and obligation rule ids.
	ID string `json:"id"`
	// Title is for people.
	Title string `json:"title"`
	// Kind is "bilateral" (exactly two parties) or "multilateral".
	Kind string `json:"kind"`
	// Parties are ISO 3166-1 alpha-2 country codes. Every party may ask
	// every other party.
	Parties []string `json:"parties"`
	// Purposes are the PurposeOfUse codes the agreement covers.
	Purposes []string `json:"purposes"`
	// DataClasses are the MHP data classes covered: C, S, aggregate, audit.
	DataClasses []string `json:"data_classes"`
	// ResourceTypes are the FHIR types covered; "*" covers all.
	ResourceTypes []string `json:"resource_types"`
	// ValidFrom and ValidUntil bound the agreement (YYYY-MM-DD, both days
	// included).
	ValidFrom  string `json:"valid_from"`
	ValidUntil string `json:"valid_until"`
	// ExplicitConsentRequired asks for a consent permit that names the
	// requester's country or organisation.
	ExplicitConsentRequired bool `json:"explicit_consent_required"`
	// BreakGlass lets ETREAT break-the-glass override the patient's deny.
	BreakGlass bool `json:"break_glass"`
	// Obligations are attached to every release under the agreement.
	Obligations []Obligation `json:"obligations"`
	// LegalBasis cites the legal text, for people.
	LegalBasis string `json:"legal_basis,omitempty"`
	// PatientMatch says whether and how the parties may find each other's
	// patients by demographic traits (Patient/$match); nil: they may not.
	PatientMatch *PatientMatch `json:"patient_match,omitempty"`
	// Statistics are the terms under which the parties release aggregate
	// statistics to each other (Measure/$evaluate-measure); nil: they do
	// not. The agreement must then cover the aggregate data class.
	Statistics *StatisticsTerms `json:"statistics,omitempty"`
}

// StatisticsTerms are what an agreement (or, for requests inside one
// country, data/statistics.json) says about aggregate statistics: which
// measures and strata, and the disclosure control of what is released.
type StatisticsTerms struct {
	// Measures are the Measure ids that may be evaluated.
	Measures []string `json:"measures"`
	// Strata are the catalogue codes a report may be broken down by; a
	// firewalled stratum (migration-status, length-of-stay) only if named.
	Strata []string `json:"strata"`
	// K is the smallest count published; zero means 10.
	K int `json:"k,omitempty"`
	// ProtectedK replaces K for measures of a protected class (HIV, ...);
	// zero means K. It may not be below K.
	ProtectedK int `json:"protected_k,omitempty"`
	// Grain is the shortest period a report may cover and the unit periods
	// are widened to: month, quarter or year.
	Grain string `json:"grain"`
	// Rounding, above 1, rounds published counts to a multiple of it.
	Rounding int `json:"rounding,omitempty"`
}

// Grains are the period grains statistics terms may name, with their
// length in months.
var Grains = map[string]int{"month": 1, "quarter": 3, "year": 12}

// StatisticsStrata are the strata catalogue codes terms may name (the
// catalogue of conformance/measures; a test keeps the two equal).
var StatisticsStrata = []string{"sex", "age-band-5", "age-band-who", "country-of-birth", "citizenship",
	"migration-status", "length-of-stay", "reporting-country"}

// problems lists what is wrong with statistics terms, as field: message.
func (t *StatisticsTerms) problems() []string {
	var out []string
	if len(t.Measures) == 0 {
		out = append(out, "measures: name at least one Measure id")
	}
	for _, m := range t.Measures {
		if !agreementIDPattern.MatchString(m) {
			out = append(out, fmt.Sprintf("measures: %q is not a Measure id", m))
		}
	}
	for _, s := range t.Strata {
		if !slices.Contains(StatisticsStrata, s) {
			out = append(out, fmt.Sprintf("strata: %q is not in the strata catalogue (%s)", s, strings.Join(StatisticsStrata, ", ")))
		}
	}
	if t.K != 0 && t.K < 2 {
		out = append(out, fmt.Sprintf("k: want at least 2 (or leave it out for 10), got %d", t.K))
	}
	if t.ProtectedK != 0 && t.ProtectedK < t.k() {
		out = append(out, fmt.Sprintf("protected_k: %d is below k %d", t.ProtectedK, t.k()))
	}
	if _, ok := Grains[t.Grain]; !ok {
		out = append(out, fmt.Sprintf("grain: want month, quarter or year, got %q", t.Grain))
	}
	if t.Rounding < 0 {
		out = append(out, fmt.Sprintf("rounding: want 0 (none) or a base such as 5, got %d", t.Rounding))
	}
	return out
}

func (t *StatisticsTerms) k() int {
	if t.K == 0 {
		return 10
	}
	return t.K
}

// statisticsDoc shapes terms for the policies: lists as sets, k and
// protected_k resolved, the grain's length in months.
func (t *StatisticsTerms) statisticsDoc() map[string]any {
	pk := t.ProtectedK
	if pk == 0 {
		pk = t.k()
	}
	return map[string]any{
		"measures":     setDoc(t.Measures),
		"strata":       setDoc(t.Strata),
		"k":            json.Number(fmt.Sprint(t.k())),
		"protected_k":  json.Number(fmt.Sprint(pk)),
		"grain":        t.Grain,
		"grain_months": json.Number(fmt.Sprint(Grains[t.Grain])),
		"rounding":     json.Number(fmt.Sprint(t.Rounding)),
	}
}

// PatientMatch is what an agreement says about demographic search
// (Patient/$match) between its parties, as MyHealth@EU has each country
// say which traits it needs to identify a patient.
type PatientMatch struct {
	// Purposes are the purposes of use demographic search is allowed for;
	// each must be one of the agreement's purposes.
	Purposes []string `json:"purposes"`
	// LowestGrade is the lowest match grade released to the other
	// parties: "certain", "probable" or "possible".
	LowestGrade string `json:"lowest_grade"`
	// Traits maps a party (ISO alpha-2) to the rules of its sources.
	// A party without an entry is not asked.
	Traits map[string]TraitRules `json:"traits"`
}

// TraitRules are one country's rules for demographic search: what a
// request must carry before its sources are asked, and what may be sent
// to them.
type TraitRules struct {
	// Required trait kinds must all be in the request.
	Required []string `json:"required"`
	// Allowed trait kinds are sent to the source; others stay in the
	// gateway. Every required kind must be allowed.
	Allowed []string `json:"allowed"`
}

// TraitKinds are the kinds of demographic trait a $match request may
// carry, as policies see them (never their values).
var TraitKinds = []string{"family", "given", "birthDate", "gender", "birthPlace", "citizenship", "identifier"}

// MatchGrades are the grades an agreement may name as the lowest.
var MatchGrades = []string{"certain", "probable", "possible"}

// ErrAgreements is wrapped by every error about the agreements file.
var ErrAgreements = errors.New("invalid agreements")

var (
	agreementIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]*$`)
	countryPattern     = regexp.MustCompile(`^[A-Z]{2}$`)
	typePattern        = regexp.MustCompile(`^[A-Z][A-Za-z]+$`)
)

// purposeCodes are the HL7 v3 PurposeOfUse codes an agreement may name; a
// typo ("TRAET") is then a load error instead of a silent gap.
var purposeCodes = map[string]bool{}

func init() {
	for _, c := range strings.Fields(`
		PurposeOfUse HMARKT HOPERAT CAREMGT DONAT FRAUD GOV HACCRED HCOMPL HDECD
		HDIRECT HDM HLEGAL HOUTCOMS HPRGRP HQUALIMP HSYSADMIN LABELING METAMGT
		MEMADMIN MILCDM PATADMIN PATSFTY PERFMSR RECORDMGT SYSDEV HTEST TRAIN
		HPAYMT CLMATTCH COVAUTH COVERAGE ELIGDTRM ELIGVER ENROLLM MILDCRG PMTDS
		REMITADV HRESCH BIORCH CLINTRCH CLINTRCHNPC CLINTRCHPC PRECLINTRCH DSRCH
		POARCH TRANSRCH PATRQT FAMRQT PWATRNY SUPNWK PUBHLTH DISASTER THREAT
		TREAT CLINTRL COC ETREAT BTG ERTREAT POPHLTH TREATDS`) {
		purposeCodes[c] = true
	}
}

var dataClasses = map[string]bool{"C": true, "S": true, "aggregate": true, "audit": true}

// parseAgreements reads and validates the agreements document (the value
// of data.data.agreements). Every problem is reported, each naming the
// agreement and the field, so a lawyer can fix them all in one go.
func parseAgreements(doc any) ([]Agreement, error) {
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAgreements, err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var list []Agreement
	if err := dec.Decode(&list); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrAgreements, err)
	}
	var problems []string
	seen := map[string]bool{}
	for i, a := range list {
		name := fmt.Sprintf("agreements[%d]", i)
		if a.ID != "" {
			name = fmt.Sprintf("agreement %q", a.ID)
		}
		bad := func(field, format string, args ...any) {
			problems = append(problems, fmt.Sprintf("%s: %s: %s", name, field, fmt.Sprintf(format, args...)))
		}
		switch {
		case !agreementIDPattern.MatchString(a.ID):
			bad("id", "want lower-case letters, digits, '.' or '-', got %q", a.ID)
		case seen[a.ID]:
			bad("id", "used by two agreements")
		}
		seen[a.ID] = true
		if strings.TrimSpace(a.Title) == "" {
			bad("title", "missing")
		}
		switch a.Kind {
		case "bilateral":
			if len(a.Parties) != 2 {
				bad("parties", "a bilateral agreement has exactly two parties, got %d", len(a.Parties))
			}
		case "multilateral":
			if len(a.Parties) < 2 {
				bad("parties", "want at least two parties, got %d", len(a.Parties))
			}
		default:
			bad("kind", "want \"bilateral\" or \"multilateral\", got %q", a.Kind)
		}
		for _, p := range a.Parties {
			if !countryPattern.MatchString(p) {
				bad("parties", "want ISO 3166-1 alpha-2 codes such as \"DE\", got %q", p)
			}
		}
		if dup := firstDuplicate(a.Parties); dup != "" {
			bad("parties", "%q named twice", dup)
		}
		if len(a.Purposes) == 0 {
			bad("purposes", "name at least one purpose of use")
		}
		for _, p := range a.Purposes {
			if !purposeCodes[p] {
				bad("purposes", "%q is not an HL7 v3 PurposeOfUse code", p)
			}
		}
		if len(a.DataClasses) == 0 {
			bad("data_classes", "name at least one of C, S, aggregate, audit")
		}
		for _, c := range a.DataClasses {
			if !dataClasses[c] {
				bad("data_classes", "want C, S, aggregate or audit, got %q", c)
			}
		}
		if len(a.ResourceTypes) == 0 {
			bad("resource_types", "name at least one FHIR resource type, or \"*\"")
		}
		for _, t := range a.ResourceTypes {
			if t != "*" && !typePattern.MatchString(t) {
				bad("resource_types", "want a FHIR resource type such as \"Condition\", got %q", t)
			}
		}
		from, errFrom := time.Parse(time.DateOnly, a.ValidFrom)
		if errFrom != nil {
			bad("valid_from", "want a date YYYY-MM-DD, got %q", a.ValidFrom)
		}
		until, errUntil := time.Parse(time.DateOnly, a.ValidUntil)
		if errUntil != nil {
			bad("valid_until", "want a date YYYY-MM-DD, got %q", a.ValidUntil)
		}
		if errFrom == nil && errUntil == nil && until.Before(from) {
			bad("valid_until", "%s is before valid_from %s", a.ValidUntil, a.ValidFrom)
		}
		if pm := a.PatientMatch; pm != nil {
			if len(pm.Purposes) == 0 {
				bad("patient_match.purposes", "name at least one purpose of use")
			}
			for _, p := range pm.Purposes {
				if !slices.Contains(a.Purposes, p) {
					bad("patient_match.purposes", "%q is not one of the agreement's purposes", p)
				}
			}
			if !slices.Contains(MatchGrades, pm.LowestGrade) {
				bad("patient_match.lowest_grade", "want certain, probable or possible, got %q", pm.LowestGrade)
			}
			if len(pm.Traits) == 0 {
				bad("patient_match.traits", "give the trait rules of at least one party")
			}
			countries := make([]string, 0, len(pm.Traits))
			for c := range pm.Traits {
				countries = append(countries, c)
			}
			slices.Sort(countries)
			for _, c := range countries {
				rules := pm.Traits[c]
				field := "patient_match.traits." + c
				if !slices.Contains(a.Parties, c) {
					bad(field, "%q is not a party", c)
				}
				if len(rules.Allowed) == 0 {
					bad(field+".allowed", "name the trait kinds its sources may receive")
				}
				for _, t := range append(slices.Clone(rules.Required), rules.Allowed...) {
					if !slices.Contains(TraitKinds, t) {
						bad(field, "%q is not a trait kind (%s)", t, strings.Join(TraitKinds, ", "))
					}
				}
				for _, t := range rules.Required {
					if !slices.Contains(rules.Allowed, t) {
						bad(field+".required", "%q is required but not allowed to be sent", t)
					}
				}
			}
		}
		if st := a.Statistics; st != nil {
			for _, p := range st.problems() {
				bad("statistics", "%s", p)
			}
			if !slices.Contains(a.DataClasses, "aggregate") {
				bad("statistics", "the agreement must cover the aggregate data class to set statistics terms")
			}
		}
		for j, o := range a.Obligations {
			switch o.Kind {
			case ObligationRedact:
				if len(o.Paths) == 0 {
					bad(fmt.Sprintf("obligations[%d]", j), "a redact obligation needs paths")
				}
			case ObligationLabel:
				if len(o.Labels) == 0 {
					bad(fmt.Sprintf("obligations[%d]", j), "a label obligation needs labels")
				}
			case ObligationNotify:
				if o.Target == "" {
					bad(fmt.Sprintf("obligations[%d]", j), "a notify obligation needs a target")
				}
			default:
				bad(fmt.Sprintf("obligations[%d]", j), "kind: want redact, label or notify, got %q", o.Kind)
			}
			if o.Rule != "" {
				bad(fmt.Sprintf("obligations[%d]", j), "rule is set by the policy, leave it out")
			}
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w:\n  %s", ErrAgreements, strings.Join(problems, "\n  "))
	}
	return list, nil
}

func firstDuplicate(list []string) string {
	seen := map[string]bool{}
	for _, s := range list {
		if seen[s] {
			return s
		}
		seen[s] = true
	}
	return ""
}

// indexAgreements shapes the agreements for lookup by the policies
// (data.mhg.index): pairs[requester country][source country][purpose] is
// the sorted list of agreement ids, and agreements[id] holds each agreement
// with its lists turned into sets and its validity in Unix nanoseconds
// (valid_until_ns is the first instant after the last valid day). A rule
// then reads two or three keys instead of scanning every agreement.
func indexAgreements(list []Agreement) map[string]any {
	pairs := map[string]any{}
	byID := map[string]any{}
	for _, a := range list {
		from, _ := time.Parse(time.DateOnly, a.ValidFrom)
		until, _ := time.Parse(time.DateOnly, a.ValidUntil)
		obligations := make([]any, 0, len(a.Obligations))
		for _, o := range a.Obligations {
			obligations = append(obligations, obligationDoc(o))
		}
		byID[a.ID] = map[string]any{
			"id":                        a.ID,
			"title":                     a.Title,
			"kind":                      a.Kind,
			"parties":                   stringsDoc(a.Parties),
			"purposes":                  setDoc(a.Purposes),
			"data_classes":              setDoc(a.DataClasses),
			"resource_types":            setDoc(a.ResourceTypes),
			"valid_from_ns":             json.Number(fmt.Sprint(from.UnixNano())),
			"valid_until_ns":            json.Number(fmt.Sprint(until.AddDate(0, 0, 1).UnixNano())),
			"explicit_consent_required": a.ExplicitConsentRequired,
			"break_glass":               a.BreakGlass,
			"obligations":               obligations,
		}
		if pm := a.PatientMatch; pm != nil {
			traits := map[string]any{}
			for c, r := range pm.Traits {
				traits[c] = map[string]any{"required": stringsDoc(r.Required), "allowed": stringsDoc(r.Allowed)}
			}
			byID[a.ID].(map[string]any)["patient_match"] = map[string]any{
				"purposes":     setDoc(pm.Purposes),
				"lowest_grade": pm.LowestGrade,
				"traits":       traits,
			}
		}
		if a.Statistics != nil {
			byID[a.ID].(map[string]any)["statistics"] = a.Statistics.statisticsDoc()
		}
		for _, from := range a.Parties {
			for _, to := range a.Parties {
				if from == to {
					continue
				}
				dst, _ := pairs[from].(map[string]any)
				if dst == nil {
					dst = map[string]any{}
					pairs[from] = dst
				}
				byPurpose, _ := dst[to].(map[string]any)
				if byPurpose == nil {
					byPurpose = map[string]any{}
					dst[to] = byPurpose
				}
				for _, p := range a.Purposes {
					ids, _ := byPurpose[p].([]any)
					byPurpose[p] = append(ids, a.ID)
				}
			}
		}
	}
	for _, dst := range pairs {
		for _, byPurpose := range dst.(map[string]any) {
			for p, ids := range byPurpose.(map[string]any) {
				list := ids.([]any)
				slices.SortFunc(list, func(a, b any) int { return strings.Compare(a.(string), b.(string)) })
				byPurpose.(map[string]any)[p] = slices.Compact(list)
			}
		}
	}
	return map[string]any{"pairs": pairs, "agreements": byID}
}

func setDoc(list []string) map[string]any {
	m := make(map[string]any, len(list))
	for _, s := range list {
		m[s] = true
	}
	return m
}

func stringsDoc(list []string) []any {
	out := make([]any, len(list))
	for i, s := range list {
		out[i] = s
	}
	return out
}

// obligationDoc renders an obligation as the policies see it: the JSON
// form of Obligation, without the rule (the policy names it).
func obligationDoc(o Obligation) map[string]any {
	m := map[string]any{"kind": o.Kind}
	if len(o.Paths) > 0 {
		m["paths"] = stringsDoc(o.Paths)
	}
	if len(o.Labels) > 0 {
		labels := make([]any, len(o.Labels))
		for i, l := range o.Labels {
			labels[i] = map[string]any{"system": l.System, "code": l.Code}
		}
		m["labels"] = labels
	}
	if o.Target != "" {
		m["target"] = o.Target
	}
	return m
}

// ErrStatistics is wrapped by every error about data/statistics.json.
var ErrStatistics = errors.New("invalid statistics terms")

// parseDomesticStatistics reads data.data.statistics: {"domestic": terms},
// the terms for statistics asked of sources in the requester's own
// country. Absent: no domestic statistics.
func parseDomesticStatistics(doc any) (*StatisticsTerms, error) {
	if doc == nil {
		return nil, nil
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatistics, err)
	}
	var file struct {
		Domestic *StatisticsTerms `json:"domestic"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStatistics, err)
	}
	if file.Domestic == nil {
		return nil, nil
	}
	if ps := file.Domestic.problems(); len(ps) > 0 {
		return nil, fmt.Errorf("%w: domestic: %s", ErrStatistics, strings.Join(ps, "; "))
	}
	return file.Domestic, nil
}
