package federate

import (
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
)

// resourceFacts is what the release policy may know about a resource
// (authz.FactsOf: type, security labels, category codes, data class).
// Nothing else of the resource reaches the policy. A resource whose facts
// cannot be read is described as firewalled, so it is released only where
// class S data would be.
func resourceFacts(cr *rpb.ContainedResource) *authz.Resource {
	f, err := authz.FactsOf(cr)
	if err != nil {
		return &authz.Resource{Type: r4.TypeName(cr), Security: []authz.Coding{}, Category: []string{}, Class: authz.ClassSensitive}
	}
	return &f
}

// patientRef returns the gateway id of the patient a resource belongs to:
// its own id for a Patient, else its subject or patient reference.
func patientRef(cr *rpb.ContainedResource) string {
	res := r4.Resource(cr)
	if r4.TypeName(res) == "Patient" {
		return r4.ID(res)
	}
	m := res.ProtoReflect()
	for _, name := range []protoreflect.Name{"subject", "patient", "beneficiary"} {
		fd := m.Descriptor().Fields().ByName(name)
		if fd == nil || fd.IsList() || fd.Message() == nil || !m.Has(fd) {
			continue
		}
		if ref, ok := m.Get(fd).Message().Interface().(*dpb.Reference); ok {
			if id := ref.GetPatientId().GetValue(); id != "" {
				return id
			}
		}
	}
	return ""
}
