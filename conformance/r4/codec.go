package r4

import (
	"errors"
	"fmt"
	"sync"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
)

// ErrInvalid is wrapped by every error that says the JSON is not valid FHIR
// R4. The wrapped message may quote the document: send it back to the client
// that sent the document, never to logs.
var ErrInvalid = errors.New("invalid FHIR R4 resource")

var (
	once         sync.Once
	unmarshaller *jsonformat.Unmarshaller
	marshaller   *jsonformat.Marshaller
	initErr      error
)

func setup() {
	once.Do(func() {
		unmarshaller, initErr = jsonformat.NewUnmarshaller("UTC", fhirversion.R4)
		if initErr != nil {
			return
		}
		marshaller, initErr = jsonformat.NewMarshaller(false, "", "", fhirversion.R4)
	})
}

// Parse parses and validates one R4 resource in JSON form. Validation covers
// the R4 structure, primitive formats, required fields and reference types.
// Every form of primitive extension R4 JSON allows is accepted (Normalize
// runs first). Errors wrap ErrInvalid.
func Parse(b []byte) (*rpb.ContainedResource, error) {
	setup()
	if initErr != nil {
		return nil, fmt.Errorf("r4 codec: %w", initErr)
	}
	m, err := unmarshaller.Unmarshal(Normalize(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	cr, ok := m.(*rpb.ContainedResource)
	if !ok {
		return nil, fmt.Errorf("%w: unexpected message %T", ErrInvalid, m)
	}
	return cr, nil
}

// Marshal renders a resource (a ContainedResource or a concrete resource
// message such as *patient_go_proto.Patient) as compact R4 JSON. It does
// not change m: the jsonformat marshaller takes the marker off a primitive
// that has extensions but no value (a birthDate that is only a
// data-absent-reason) as it renders it, so that a second rendering of the
// same message fails; it is given a copy.
func Marshal(m proto.Message) ([]byte, error) {
	m = proto.Clone(unwrap(m))
	setup()
	if initErr != nil {
		return nil, fmt.Errorf("r4 codec: %w", initErr)
	}
	b, err := marshaller.MarshalResource(m)
	if err != nil {
		return nil, fmt.Errorf("r4 marshal: %w", err)
	}
	return b, nil
}

// unwrap returns the resource inside a ContainedResource: jsonformat
// renders a ContainedResource as its own wrapper object, not as the
// resource.
func unwrap(m proto.Message) proto.Message {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		if inner := Resource(cr); inner != nil {
			return inner
		}
	}
	return m
}

// Resource returns the concrete resource held by a ContainedResource, or nil
// when it holds none.
func Resource(cr *rpb.ContainedResource) proto.Message {
	if cr == nil {
		return nil
	}
	m := cr.ProtoReflect()
	oneof := m.Descriptor().Oneofs().ByName("oneof_resource")
	if oneof == nil {
		return nil
	}
	fd := m.WhichOneof(oneof)
	if fd == nil {
		return nil
	}
	return m.Get(fd).Message().Interface()
}

// TypeName returns the FHIR resource type of a resource message or of the
// resource inside a ContainedResource ("Patient", "Observation", ...).
func TypeName(m proto.Message) string {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = Resource(cr)
	}
	if m == nil {
		return ""
	}
	return string(m.ProtoReflect().Descriptor().Name())
}

// ID returns the logical id of a resource, or "" when it has none.
func ID(m proto.Message) string {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = Resource(cr)
	}
	if m == nil {
		return ""
	}
	r := m.ProtoReflect()
	fd := r.Descriptor().Fields().ByName("id")
	if fd == nil || !r.Has(fd) {
		return ""
	}
	idMsg := r.Get(fd).Message()
	vfd := idMsg.Descriptor().Fields().ByName("value")
	if vfd == nil {
		return ""
	}
	return idMsg.Get(vfd).String()
}
