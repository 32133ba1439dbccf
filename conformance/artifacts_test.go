package conformance

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/conformance/r4"
)

func TestArtifactsAreValidR4(t *testing.T) {
	all := Artifacts()
	if len(all) == 0 {
		t.Fatal("no artifacts embedded")
	}
	for _, a := range all {
		t.Run(a.File, func(t *testing.T) {
			cr, err := r4.Parse(a.JSON)
			if err != nil {
				t.Fatalf("r4.Parse: %v", err)
			}
			if got := r4.TypeName(cr); got != a.ResourceType {
				t.Errorf("type = %s, want %s", got, a.ResourceType)
			}
			if want := a.ResourceType + "-" + a.ID + ".json"; a.File != want {
				t.Errorf("file name = %s, want %s", a.File, want)
			}
			if !strings.HasSuffix(a.URL, "/"+a.ResourceType+"/"+a.ID) {
				t.Errorf("url %s does not end in /%s/%s", a.URL, a.ResourceType, a.ID)
			}
		})
	}
}

func TestStructureDefinitionsAreConstraints(t *testing.T) {
	for _, a := range StructureDefinitions() {
		var sd struct {
			Derivation     string `json:"derivation"`
			BaseDefinition string `json:"baseDefinition"`
			Differential   struct {
				Element []json.RawMessage `json:"element"`
			} `json:"differential"`
			Snapshot any `json:"snapshot"`
		}
		if err := json.Unmarshal(a.JSON, &sd); err != nil {
			t.Fatalf("%s: %v", a.File, err)
		}
		if sd.Derivation != "constraint" || sd.BaseDefinition == "" || len(sd.Differential.Element) == 0 || sd.Snapshot != nil {
			t.Errorf("%s: want a constraint with a base and a differential only", a.File)
		}
	}
}

func TestArtifactLookup(t *testing.T) {
	cases := []struct {
		url    string
		wantOK bool
	}{
		{ProfilePatient, true},
		{ProfilePatient + "|0.1.0", true},
		{ProfilePatient + "|9.9.9", false},
		{ExtArrival, true},
		{CSMigrationStatus, true},
		{VSCountry, true},
		{OpSummary, true},
		{OpToMHP, true},
		{OpEverything, true},
		{Canonical + "/StructureDefinition/mhp-visa", false},
		{"http://hl7.org/fhir/uv/ips/StructureDefinition/Patient-uv-ips", false},
	}
	for _, tc := range cases {
		a, ok := Artifact(tc.url)
		if ok != tc.wantOK {
			t.Errorf("Artifact(%s) ok = %v, want %v", tc.url, ok, tc.wantOK)
		}
		if ok && !strings.HasPrefix(tc.url, a.URL) {
			t.Errorf("Artifact(%s) returned %s", tc.url, a.URL)
		}
	}
	a, _ := Artifact(ProfilePatient)
	a.JSON[0] = 'X'
	if b, _ := Artifact(ProfilePatient); b.JSON[0] == 'X' {
		t.Error("Artifact exposes the embedded bytes")
	}
}

// Every canonical constant names a shipped artifact, so code built on
// canonical.go cannot point at nothing.
func TestCanonicalConstantsAreShipped(t *testing.T) {
	for _, u := range []string{
		ProfileBundle, ProfileComposition, ProfilePatient, ProfileCondition, ProfileAllergy,
		ProfileMedStatement, ProfileMedRequest, ProfileImmunization, ProfileObservationLab,
		ProfileProcedure, ProfileMigrationContext, ProfileProvenance, ProfileAuditEvent,
		ExtArrival, ExtDateAccuracy, ExtStatusIdentifier, ExtAuditAgentOrganization, ExtAuditAgentCountry, CSRequesterRole,
		CSMigrationStatus, CSReasonMigration, CSSensitivity, CSDateAccuracy, CSContextItem,
		VSMigrationStatus, VSReasonMigration, VSSensitivity, VSDateAccuracy, VSContextItem,
		VSCountry, VSConfidentiality, VSConfidentialityRestricted, OpSummary, OpToMHP, OpEverything,
	} {
		if _, ok := Artifact(u); !ok {
			t.Errorf("%s is not shipped", u)
		}
	}
}

// Each profile derives from the IPS profile reference §a.2 names, or from
// the core resource where IPS has none.
func TestBaseDefinitions(t *testing.T) {
	const ips = "http://hl7.org/fhir/uv/ips/StructureDefinition/"
	const core = "http://hl7.org/fhir/StructureDefinition/"
	want := map[string]string{
		ProfileBundle:           ips + "Bundle-uv-ips",
		ProfileComposition:      ips + "Composition-uv-ips",
		ProfilePatient:          ips + "Patient-uv-ips",
		ProfileCondition:        ips + "Condition-uv-ips",
		ProfileAllergy:          ips + "AllergyIntolerance-uv-ips",
		ProfileMedStatement:     ips + "MedicationStatement-uv-ips",
		ProfileMedRequest:       ips + "MedicationRequest-uv-ips",
		ProfileImmunization:     ips + "Immunization-uv-ips",
		ProfileObservationLab:   ips + "Observation-results-laboratory-pathology-uv-ips",
		ProfileProcedure:        ips + "Procedure-uv-ips",
		ProfileMigrationContext: core + "Observation",
		ProfileProvenance:       core + "Provenance",
		ProfileAuditEvent:       core + "AuditEvent",
		ExtArrival:              core + "Extension",
		ExtDateAccuracy:         core + "Extension",
		ExtStatusIdentifier:     core + "Extension",
	}
	for url, base := range want {
		a, ok := Artifact(url)
		if !ok {
			t.Errorf("%s not shipped", url)
			continue
		}
		var sd struct {
			BaseDefinition string `json:"baseDefinition"`
		}
		if err := json.Unmarshal(a.JSON, &sd); err != nil {
			t.Fatal(err)
		}
		if sd.BaseDefinition != base {
			t.Errorf("%s: base %s, want %s", url, sd.BaseDefinition, base)
		}
	}
}

// No shipped artifact defines or suggests the stigmatising ILGIM code.
func TestNoIllegalImmigrantCode(t *testing.T) {
	for _, cs := range append(CodeSystems(), ValueSets()...) {
		var r struct {
			Concept []struct {
				Code    string `json:"code"`
				Display string `json:"display"`
			} `json:"concept"`
			Compose struct {
				Include []struct {
					Concept []struct {
						Code string `json:"code"`
					} `json:"concept"`
				} `json:"include"`
			} `json:"compose"`
		}
		if err := json.Unmarshal(cs.JSON, &r); err != nil {
			t.Fatal(err)
		}
		for _, c := range r.Concept {
			if strings.EqualFold(c.Code, "ILGIM") || strings.Contains(strings.ToLower(c.Code+c.Display), "illegal") {
				t.Errorf("%s defines %s", cs.File, c.Code)
			}
		}
		for _, inc := range r.Compose.Include {
			for _, c := range inc.Concept {
				if strings.EqualFold(c.Code, "ILGIM") {
					t.Errorf("%s includes ILGIM", cs.File)
				}
			}
		}
	}
}

// The plan compiles: every invariant key has an implementation, every
// required binding names a shipped ValueSet, every slice a discriminator.
func TestPlanCompiles(t *testing.T) {
	p, err := compile()
	if err != nil {
		t.Fatal(err)
	}
	if len(p.profiles) != len(StructureDefinitions()) {
		t.Errorf("compiled %d of %d StructureDefinitions", len(p.profiles), len(StructureDefinitions()))
	}
}

// The FHIRPath of mhp-pat-3 (for other validators) and the Go table that
// implements it name the same URLs; mhp-pat-2's tables are read from its
// FHIRPath, and hold what the reference names.
func TestPatientInvariantListsMatchFHIRPath(t *testing.T) {
	expr := map[string]string{}
	for _, key := range []string{"mhp-pat-2", "mhp-pat-3"} {
		if expr[key] = invariantExpression(ProfilePatient, key); expr[key] == "" {
			t.Fatalf("mhp-patient has no %s", key)
		}
	}
	// quoted returns the string literals of a FHIRPath expression: the odd
	// pieces between single quotes.
	quoted := func(s string) []string {
		parts := strings.Split(s, "'")
		var in []string
		for i := 1; i < len(parts); i += 2 {
			in = append(in, parts[i])
		}
		return in
	}
	check := func(key string, sets ...map[string]bool) {
		t.Helper()
		inGo := map[string]bool{}
		for _, s := range sets {
			for k := range s {
				inGo[k] = true
			}
		}
		inFP := map[string]bool{}
		for _, q := range quoted(expr[key]) {
			inFP[q] = true
		}
		for k := range inGo {
			if !inFP[k] {
				t.Errorf("%s: %s is checked in Go but not in the FHIRPath", key, k)
			}
		}
		for k := range inFP {
			if !inGo[k] {
				t.Errorf("%s: %s is in the FHIRPath but not checked in Go", key, k)
			}
		}
	}
	check("mhp-pat-3", originOnlyExtensions)
	systems, types, exts := StatusRevealing()
	for _, want := range []struct {
		list []string
		item string
	}{
		{systems, "http://nphies.sa/identifier/iqama"}, {systems, "urn:oid:1.2.250.1.213.1.4.9"},
		{systems, "https://fhir.infoway-inforoute.ca/NamingSystem/ca-interim-federal-health-id"},
		{types, "REFUGEE-ID"}, {types, "ALIEN-ID"},
		{exts, "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-OverseasVisitorChargingCategory"},
	} {
		if !slices.Contains(want.list, want.item) {
			t.Errorf("mhp-pat-2 as read from its FHIRPath lacks %s", want.item)
		}
	}
	if n := len(systems) + len(types) + len(exts); n != len(quoted(expr["mhp-pat-2"])) {
		t.Errorf("read %d names from mhp-pat-2, its FHIRPath quotes %d", n, len(quoted(expr["mhp-pat-2"])))
	}
}
