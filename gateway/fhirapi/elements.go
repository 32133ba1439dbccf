package fhirapi

import (
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
)

// subsetted is the tag FHIR asks for on a resource returned with only some
// of its elements.
var subsetted = &dpb.Coding{
	System: &dpb.Uri{Value: "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"},
	Code:   &dpb.Code{Value: "SUBSETTED"},
}

// applyElements keeps the top-level elements named (plus id, meta and the
// elements FHIR requires, so the result stays valid R4) and tags the
// resource SUBSETTED. res is modified in place.
func applyElements(res proto.Message, elements []string) {
	keep := map[string]bool{"id": true, "meta": true}
	for _, e := range elements {
		keep[e] = true
	}
	m := res.ProtoReflect()
	fields := m.Descriptor().Fields()
	removed := false
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if keep[fd.JSONName()] || required(fd) || !m.Has(fd) {
			continue
		}
		m.Clear(fd)
		removed = true
	}
	if !removed {
		return
	}
	fd := fields.ByName("meta")
	if fd == nil {
		return
	}
	if !m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfMessage((&dpb.Meta{}).ProtoReflect()))
	}
	if meta, ok := m.Get(fd).Message().Interface().(*dpb.Meta); ok {
		meta.Tag = append(meta.Tag, proto.Clone(subsetted).(*dpb.Coding))
	}
}

func required(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	req, ok := proto.GetExtension(opts, apb.E_ValidationRequirement).(apb.Requirement)
	return ok && req == apb.Requirement_REQUIRED_BY_FHIR
}
