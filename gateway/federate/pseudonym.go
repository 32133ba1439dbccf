package federate

import (
	cpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/codes_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/migrant-health/mhg/conformance"
)

// addPseudonym gives a mapped Patient the gateway's pseudonymous identifier
// (MHP: system .../sid/mpi, use secondary, the gateway id as value). It is
// the one identifier that may cross a border: policies redact national
// identifiers from Patients released abroad and keep this one, so the
// receiving clinician can still name the record back to the gateway.
func addPseudonym(cr *rpb.ContainedResource) {
	p := cr.GetPatient()
	if p == nil || p.GetId().GetValue() == "" {
		return
	}
	for _, id := range p.GetIdentifier() {
		if id.GetSystem().GetValue() == conformance.SIDGatewayPseudonym {
			return
		}
	}
	p.Identifier = append(p.Identifier, &dpb.Identifier{
		Use:    &dpb.Identifier_UseCode{Value: cpb.IdentifierUseCode_SECONDARY},
		System: &dpb.Uri{Value: conformance.SIDGatewayPseudonym},
		Value:  &dpb.String{Value: p.GetId().GetValue()},
	})
}
