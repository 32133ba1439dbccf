package authz

import (
	"fmt"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/migrant-health/mhg/conformance/r4"
)

// redactedLabel is the DS4P label a resource gets when a redaction removed
// something from it, so that its reader knows it is not whole.
var redactedLabel = Coding{System: "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", Code: "REDACTED"}

// Apply carries out the redact and label obligations of a decision on one
// resource (a concrete R4 message or a ContainedResource, changed in
// place), with the path language ErrPath documents. A redaction that
// removed something also adds the v3-ObservationValue REDACTED label.
// Notify obligations are the caller's. An obligation Apply cannot carry out
// (an unreadable path, an unknown kind) is an error, and the resource must
// then not be released.
func Apply(res proto.Message, obligations []Obligation) error {
	if cr, ok := res.(*rpb.ContainedResource); ok {
		res = r4.Resource(cr)
	}
	if res == nil {
		return fmt.Errorf("apply: %w", ErrNotAResource)
	}
	typ := string(res.ProtoReflect().Descriptor().Name())
	for _, o := range obligations {
		switch o.Kind {
		case ObligationRedact:
			removed := false
			for _, p := range o.Paths {
				steps, err := parsePath(p)
				if err != nil {
					return fmt.Errorf("apply: obligation %s: %w", o.Rule, err)
				}
				if steps[0].name == typ {
					removed = redactProto(res.ProtoReflect(), steps[1:]) || removed
				}
				r, err := redactContained(res, steps)
				if err != nil {
					return fmt.Errorf("apply: obligation %s: %w", o.Rule, err)
				}
				removed = r || removed
			}
			if removed {
				addSecurity(res, []Coding{redactedLabel})
			}
		case ObligationLabel:
			addSecurity(res, o.Labels)
		case ObligationNotify, ObligationMatch, ObligationStatistics:
			// Notification is the caller's; match and statistics
			// obligations bound the query, not what a released resource
			// holds.
		default:
			return fmt.Errorf("apply: obligation %s: unknown kind %q", o.Rule, o.Kind)
		}
	}
	return nil
}

// redactContained carries out a redaction on the contained resources of
// res whose type the path names (RelatedPerson.name on an allergy's
// contained asserter): a contained resource gets the same redaction as one
// released on its own.
func redactContained(res proto.Message, steps []pathStep) (bool, error) {
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("contained")
	if fd == nil || !fd.IsList() || !m.Has(fd) {
		return false, nil
	}
	list := m.Get(fd).List()
	removed := false
	for i := 0; i < list.Len(); i++ {
		a, ok := list.Get(i).Message().Interface().(*anypb.Any)
		if !ok {
			continue
		}
		cr := &rpb.ContainedResource{}
		if err := a.UnmarshalTo(cr); err != nil {
			return false, fmt.Errorf("contained resource %d: %w", i, err)
		}
		inner := r4.Resource(cr)
		if inner == nil || string(inner.ProtoReflect().Descriptor().Name()) != steps[0].name {
			continue
		}
		if redactProto(inner.ProtoReflect(), steps[1:]) {
			removed = true
			if err := a.MarshalFrom(cr); err != nil {
				return false, fmt.Errorf("contained resource %d: %w", i, err)
			}
		}
	}
	return removed, nil
}

// redactProto removes what steps name under m and reports whether it
// removed anything. Element names are FHIR JSON names; a choice element
// (value[x]) is one proto field named for its stem.
func redactProto(m protoreflect.Message, steps []pathStep) bool {
	step := steps[0]
	fd := fieldByJSONName(m.Descriptor(), step.name)
	if fd == nil || !m.Has(fd) {
		return false
	}
	last := len(steps) == 1
	if fd.IsList() {
		list := m.Get(fd).List()
		kept := make([]protoreflect.Value, 0, list.Len())
		removed := false
		for i := 0; i < list.Len(); i++ {
			v := list.Get(i)
			switch {
			case fd.Message() != nil && !step.keepsProto(v.Message()):
				kept = append(kept, v)
			case last:
				removed = true
			case fd.Message() != nil:
				removed = redactProto(v.Message(), steps[1:]) || removed
				kept = append(kept, v)
			default:
				kept = append(kept, v)
			}
		}
		if len(kept) != list.Len() {
			list.Truncate(0)
			for _, v := range kept {
				list.Append(v)
			}
			if list.Len() == 0 {
				m.Clear(fd)
			}
		}
		return removed
	}
	if fd.Message() == nil {
		if last && step.field == "" {
			m.Clear(fd)
			return true
		}
		return false
	}
	child := m.Get(fd).Message()
	if !step.keepsProto(child) {
		return false
	}
	if last {
		m.Clear(fd)
		return true
	}
	return redactProto(child, steps[1:])
}

// keepsProto reports whether a filter step selects an element: its field
// (a primitive) equals the value, or differs from it for "!=".
func (s pathStep) keepsProto(m protoreflect.Message) bool {
	if s.field == "" {
		return true
	}
	v := ""
	if fd := fieldByJSONName(m.Descriptor(), s.field); fd != nil && m.Has(fd) && fd.Message() != nil {
		prim := m.Get(fd).Message()
		if vfd := prim.Descriptor().Fields().ByName("value"); vfd != nil && vfd.Kind() == protoreflect.StringKind {
			v = prim.Get(vfd).String()
		}
	}
	return (v == s.value) != s.negate
}

func fieldByJSONName(md protoreflect.MessageDescriptor, name string) protoreflect.FieldDescriptor {
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		if fd := fields.Get(i); fd.JSONName() == name {
			return fd
		}
	}
	return nil
}

// addSecurity adds labels to meta.security unless already there.
func addSecurity(res proto.Message, labels []Coding) {
	if len(labels) == 0 {
		return
	}
	m := res.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("meta")
	if fd == nil {
		return
	}
	if !m.Has(fd) {
		m.Set(fd, protoreflect.ValueOfMessage((&dpb.Meta{}).ProtoReflect()))
	}
	meta, ok := m.Get(fd).Message().Interface().(*dpb.Meta)
	if !ok {
		return
	}
	for _, l := range labels {
		present := false
		for _, c := range meta.GetSecurity() {
			if c.GetSystem().GetValue() == l.System && c.GetCode().GetValue() == l.Code {
				present = true
				break
			}
		}
		if !present {
			c := &dpb.Coding{Code: &dpb.Code{Value: l.Code}}
			if l.System != "" {
				c.System = &dpb.Uri{Value: l.System}
			}
			meta.Security = append(meta.Security, c)
		}
	}
}
