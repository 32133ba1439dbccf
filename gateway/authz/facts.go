package authz

import (
	"errors"
	"fmt"
	"time"

	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	conspb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/consent_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/conformance/r4"
)

// Data classes of Resource.Class.
const (
	// ClassClinical is clinical, person-level data.
	ClassClinical = "C"
	// ClassSensitive is firewalled data (migration or residence status).
	ClassSensitive = "S"
)

// LabelMIGSTAT is the MHP sensitivity code for migration status.
const LabelMIGSTAT = "MIGSTAT"

// loincRefugee is LOINC 93027-1 "Are you a refugee?": its answers are
// migration status.
const loincRefugee = "93027-1"

// ErrNotAResource: FactsOf or ProvisionsOf got no resource, or the wrong
// one.
var ErrNotAResource = errors.New("not a resource")

// FactsOf returns what policies may know about a resource (a concrete R4
// message or a ContainedResource): its type, its meta.security labels, its
// category codes and its data class. It reads nothing else, so no
// attribute of the patient (sex, birth date, nationality, ...) can reach a
// decision through it.
//
// The class is S when the resource carries the MIGSTAT label, claims the
// mhp-migration-context profile, or is an answer to LOINC 93027-1; C
// otherwise.
func FactsOf(m proto.Message) (Resource, error) {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = r4.Resource(cr)
	}
	if m == nil {
		return Resource{}, ErrNotAResource
	}
	r := m.ProtoReflect()
	facts := Resource{
		Type:     string(r.Descriptor().Name()),
		Security: []Coding{},
		Category: []string{},
		Class:    ClassClinical,
	}
	if meta := messageField(r, "meta"); meta != nil {
		for _, c := range messages(meta, "security") {
			coding := codingOf(c)
			facts.Security = append(facts.Security, coding)
			if coding.Code == LabelMIGSTAT {
				facts.Class = ClassSensitive
			}
		}
		for _, p := range messages(meta, "profile") {
			if primitive(p) == conformance.ProfileMigrationContext {
				facts.Class = ClassSensitive
			}
		}
	}
	for _, cc := range messages(r, "category") {
		for _, c := range messages(cc, "coding") {
			coding := codingOf(c)
			facts.Category = append(facts.Category, coding.System+"|"+coding.Code)
		}
	}
	if code := messageField(r, "code"); code != nil {
		for _, c := range messages(code, "coding") {
			coding := codingOf(c)
			if coding.Code == loincRefugee && coding.System == "http://loinc.org" {
				facts.Class = ClassSensitive
			}
		}
	}
	return facts, nil
}

// messageField returns a singular message field, nil when absent.
func messageField(m protoreflect.Message, name protoreflect.Name) protoreflect.Message {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Message() == nil || fd.IsList() || !m.Has(fd) {
		return nil
	}
	return m.Get(fd).Message()
}

// messages returns a message field as a list, whether it repeats or not.
func messages(m protoreflect.Message, name protoreflect.Name) []protoreflect.Message {
	fd := m.Descriptor().Fields().ByName(name)
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return nil
	}
	if !fd.IsList() {
		return []protoreflect.Message{m.Get(fd).Message()}
	}
	list := m.Get(fd).List()
	out := make([]protoreflect.Message, list.Len())
	for i := range out {
		out[i] = list.Get(i).Message()
	}
	return out
}

// primitive returns the string value of a FHIR primitive message (Uri,
// Code, String, Canonical, ...).
func primitive(m protoreflect.Message) string {
	if m == nil {
		return ""
	}
	fd := m.Descriptor().Fields().ByName("value")
	if fd == nil || fd.Kind() != protoreflect.StringKind {
		return ""
	}
	return m.Get(fd).String()
}

func codingOf(c protoreflect.Message) Coding {
	return Coding{System: primitive(messageField(c, "system")), Code: primitive(messageField(c, "code"))}
}

// CountrySystem is the identifier system that names a country in
// Consent.provision.actor.reference.identifier.
const CountrySystem = "urn:iso:std:iso:3166"

// unresolvedActor stands for a permit's actor the gateway cannot resolve:
// it matches no requester, so the permit grants nothing.
const unresolvedActor = "urn:mhg:unresolved-actor"

// ProvisionsOf normalises a FHIR R4 Consent into policy provisions, one
// per provision in its tree, with Level the nesting depth. consentID is
// the gateway's id for the Consent (for reasons; decision logs erase it).
//
// Only an active Consent has provisions. Actors are read from
// actor.reference.identifier: system urn:iso:std:iso:3166 gives a country,
// any other system an organisation (its value). What the policy input
// cannot express is resolved so that the patient is never given less
// protection than they asked for:
//   - a deny whose actor cannot be resolved applies to every actor;
//   - a permit whose actors cannot be resolved applies to none;
//   - a permit restricted by code, data, dataPeriod or action is left
//     out (it permits less than the input could say);
//   - a provision without a type is kept as "unspecified", which the
//     policies treat as invalid and deny.
func ProvisionsOf(m proto.Message, consentID string) ([]Provision, error) {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = r4.Resource(cr)
	}
	c, ok := m.(*conspb.Consent)
	if !ok || c == nil {
		return nil, fmt.Errorf("%w: want a Consent, got %T", ErrNotAResource, m)
	}
	if c.GetStatus().GetValue() != cpb.ConsentStateCode_ACTIVE || c.GetProvision() == nil {
		return []Provision{}, nil
	}
	var out []Provision
	var walk func(p *conspb.Consent_Provision, level int)
	walk = func(p *conspb.Consent_Provision, level int) {
		if level > 32 {
			return
		}
		if prov, keep := provisionOf(p, consentID, level); keep {
			out = append(out, prov)
		}
		for _, nested := range p.GetProvision() {
			walk(nested, level+1)
		}
	}
	walk(c.GetProvision(), 0)
	if out == nil {
		out = []Provision{}
	}
	return out, nil
}

func provisionOf(p *conspb.Consent_Provision, consentID string, level int) (Provision, bool) {
	prov := Provision{
		ConsentID:      consentID,
		Level:          level,
		ActorCountries: []string{},
		ActorOrgs:      []string{},
		Purposes:       []string{},
		Classes:        []string{},
		SecurityLabels: []string{},
	}
	switch p.GetType().GetValue() {
	case cpb.ConsentProvisionTypeCode_DENY:
		prov.Type = "deny"
	case cpb.ConsentProvisionTypeCode_PERMIT:
		prov.Type = "permit"
	default:
		prov.Type = "unspecified"
	}
	if prov.Type == "permit" && (len(p.GetCode()) > 0 || len(p.GetData()) > 0 || p.GetDataPeriod() != nil || len(p.GetAction()) > 0) {
		return Provision{}, false
	}
	if per := p.GetPeriod(); per != nil {
		prov.Start = fhirDateTime(per.GetStart())
		prov.End = fhirDateTime(per.GetEnd())
	}
	unresolved := false
	for _, a := range p.GetActor() {
		id := a.GetReference().GetIdentifier()
		sys, val := id.GetSystem().GetValue(), id.GetValue().GetValue()
		switch {
		case val == "":
			unresolved = true
		case sys == CountrySystem:
			prov.ActorCountries = append(prov.ActorCountries, val)
		default:
			prov.ActorOrgs = append(prov.ActorOrgs, val)
		}
	}
	if unresolved {
		if prov.Type == "deny" {
			prov.ActorCountries, prov.ActorOrgs = []string{}, []string{}
		} else if len(prov.ActorCountries) == 0 && len(prov.ActorOrgs) == 0 {
			prov.ActorOrgs = []string{unresolvedActor}
		}
	}
	for _, c := range p.GetPurpose() {
		prov.Purposes = append(prov.Purposes, c.GetCode().GetValue())
	}
	for _, c := range p.GetClassValue() {
		prov.Classes = append(prov.Classes, c.GetCode().GetValue())
	}
	for _, c := range p.GetSecurityLabel() {
		prov.SecurityLabels = append(prov.SecurityLabels, c.GetCode().GetValue())
	}
	return prov, true
}

// fhirDateTime renders a DateTime at its own precision, as the policies
// read it: 2024, 2024-05, 2024-05-17 or RFC 3339.
func fhirDateTime(dt *dpb.DateTime) string {
	if dt == nil {
		return ""
	}
	loc := time.UTC
	if l, err := time.LoadLocation(dt.GetTimezone()); err == nil && dt.GetTimezone() != "" {
		loc = l
	} else if off, err := time.Parse("-07:00", dt.GetTimezone()); err == nil {
		_, secs := off.Zone()
		loc = time.FixedZone(dt.GetTimezone(), secs)
	}
	t := time.UnixMicro(dt.GetValueUs()).In(loc)
	switch dt.GetPrecision() {
	case dpb.DateTime_YEAR:
		return t.Format("2006")
	case dpb.DateTime_MONTH:
		return t.Format("2006-01")
	case dpb.DateTime_DAY:
		return t.Format(time.DateOnly)
	}
	return t.Format(time.RFC3339Nano)
}
