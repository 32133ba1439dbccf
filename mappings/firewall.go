package mappings

import (
	"fmt"
	"strings"

	"github.com/migrant-health/mhg/conformance"
)

// contextRule returns the firewall rule that turns this resource as a whole
// into a migration-context (a refugee-screening answer), or nil.
func (p *plan) contextRule(root object, typ string) *firewallRule {
	if typ != "Observation" {
		return nil
	}
	for _, c := range objects(getObj(root, "code")["coding"]) {
		sys, code := getStr(c, "system"), getStr(c, "code")
		for _, fw := range p.firewall {
			if fw.Action == fwContext && fw.System == sys && fw.Code == code {
				return fw
			}
		}
	}
	return nil
}

// Elements of a class S Observation from the source that the
// migration-context keeps; everything else is dropped with an issue.
var contextKeeps = map[string]bool{
	"resourceType": true, "id": true, "meta": true, "extension": true, "status": true,
	"category": true, "subject": true, "issued": true, "code": true,
}

// observationToContext turns a class S Observation from the source (LOINC
// 93027-1 "Are you a refugee?") into an mhp-migration-context: the
// question and answer become a component, and the answer, through the
// rule's status map, an MHP migration status.
func (m *mapper) observationToContext(root object, rule *firewallRule) (Result, error) {
	m.class = ClassSensitive
	m.walk(root, m.typ)
	if m.fatal != nil {
		return Result{}, m.fatal
	}
	answer := object{"code": root["code"]}
	var answerKey string
	for k, v := range root {
		if strings.HasPrefix(k, "value") {
			answer[k] = v
			answerKey = k
		}
	}
	comps := []any{}
	if answerKey != "" {
		comps = append(comps, answer)
	}
	for k := range root {
		if strings.HasPrefix(k, "effective") {
			continue
		}
		if !contextKeeps[k] && !strings.HasPrefix(k, "value") {
			m.issue(sevInfo, codeInformation, m.typ+"."+k, "%s.%s is not carried into the migration-context", m.typ, k)
			delete(root, k)
		}
	}
	for k := range root {
		if strings.HasPrefix(k, "value") {
			delete(root, k)
		}
	}
	var status []string
	if answerKey != "" {
		status = statusFrom(rule.statusMap, object{"v": answer[answerKey]})
	}
	comps = append(comps, m.statusComponents(status)...)
	if len(comps) > 0 {
		root["component"] = comps
	}
	root["code"] = concept(csContextItem, "migration-context", "Migration context")
	if getObj(root, "subject") == nil {
		root["subject"] = object{"extension": []any{dataAbsent("unknown")}}
		m.issue(sevWarning, codeIncomplete, "Observation.subject", "a migration-context needs a subject; data-absent-reason added")
	}
	m.issue(sevInfo, codeSecurity, m.typ, "class S: %s; mapped to the restricted migration-context", reasonOr(rule.Reason, "the observation reveals migration status"))
	m.setMeta(root, conformance.ProfileMigrationContext)
	outID := m.setID(root, m.typ, m.upstream)
	prune(root)
	b, tree, err := emit(root, m.opts)
	if err != nil {
		return Result{}, fmt.Errorf("%w: encode: %v", ErrNotMappable, err)
	}
	out := Output{Type: "Observation", ID: outID, UpstreamID: m.upstream, Class: ClassSensitive, JSON: b, Tree: tree}
	return Result{Outputs: []Output{out}, Issues: m.sortedIssues()}, nil
}

// statusComponents renders migration statuses as the migrationStatus
// component (at most one: the first; the others are reported).
func (m *mapper) statusComponents(status []string) []any {
	if len(status) == 0 {
		return nil
	}
	first := status[0]
	for _, s := range status[1:] {
		if s != first {
			m.issue(sevWarning, codeProcessing, m.typ, "the source implies more than one migration status; the first is kept")
			break
		}
	}
	return []any{object{
		"code":                 concept(csContextItem, "migration-status", "Migration status"),
		"valueCodeableConcept": concept(conformance.CSMigrationStatus, first, migrationStatusDisplay()[first]),
	}}
}

// patientContext builds the migration-context Observation that holds what
// the firewall moved out of a Patient: class S extensions as they were,
// status-revealing identifiers as mhp-status-identifier, and the migration
// status they imply.
func (m *mapper) patientContext(patientID string) (Output, error) {
	outID, derived := m.derivedID("Observation", m.upstream, "migration-context")
	obs := object{"resourceType": "Observation"}
	if outID != "" {
		obs["id"] = outID
	}
	var exts []any
	exts = append(exts, m.fw.exts...)
	for _, id := range m.fw.idents {
		exts = append(exts, object{"url": extStatusIdentifier, "valueIdentifier": id})
	}
	if len(exts) > 0 {
		obs["extension"] = exts
	}
	obs["status"] = "final"
	obs["category"] = []any{concept(sysObsCategory, "social-history", "Social History")}
	obs["code"] = concept(csContextItem, "migration-context", "Migration context")
	if patientID != "" {
		obs["subject"] = object{"reference": "Patient/" + patientID}
	} else {
		obs["subject"] = object{"extension": []any{dataAbsent("unknown")}}
	}
	if comps := m.statusComponents(m.fw.status); len(comps) > 0 {
		obs["component"] = comps
	}
	mc := &mapper{p: m.p, opts: m.opts, typ: "Observation", class: ClassSensitive}
	if len(m.fw.idents) > 0 {
		mc.addLabel(sysActCode, "IDS", "identifier information sensitivity")
	}
	mc.setMeta(obs, conformance.ProfileMigrationContext)
	prune(obs)
	b, tree, err := emit(obs, m.opts)
	if err != nil {
		return Output{}, fmt.Errorf("%w: encode: %v", ErrNotMappable, err)
	}
	return Output{Type: "Observation", ID: outID, UpstreamID: derived, Class: ClassSensitive, JSON: b, Tree: tree}, nil
}
