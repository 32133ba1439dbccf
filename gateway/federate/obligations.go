package federate

import (
	"fmt"
	"strings"

	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
)

// applyObligations carries out the redact and label obligations of a
// decision on res (which the caller owns). A redaction adds the
// v3-ObservationValue REDACTED label, so the reader knows something was
// removed. An obligation that cannot be carried out is an error: the
// resource must then not be released.
func applyObligations(res proto.Message, obligations []authz.Obligation) error {
	typ := r4.TypeName(res)
	for _, o := range obligations {
		switch o.Kind {
		case authz.ObligationRedact:
			redacted := false
			for _, p := range o.Paths {
				did, err := redactPath(res, typ, p)
				if err != nil {
					return fmt.Errorf("obligation %s: %w", o.Rule, err)
				}
				redacted = redacted || did
			}
			if redacted {
				addSecurity(res, systemObservationVal, "REDACTED")
			}
		case authz.ObligationLabel:
			for _, l := range o.Labels {
				addSecurity(res, l.System, l.Code)
			}
		case authz.ObligationNotify:
			// Carried out by the caller (audit and notification).
		default:
			return fmt.Errorf("obligation %s: unknown kind %q", o.Rule, o.Kind)
		}
	}
	return nil
}

// redactPath removes the elements a path names. Paths are FHIR element
// paths starting with a resource type ("Patient.address",
// "Observation.value", "Patient.contact.telecom") whose steps may be
// extension('url') to remove extensions by url. A path for another type
// does nothing. It reports whether anything was removed.
func redactPath(res proto.Message, typ, path string) (bool, error) {
	steps := splitPath(path)
	if len(steps) < 2 {
		return false, fmt.Errorf("redaction path %q needs a type and an element", path)
	}
	if steps[0] != typ && steps[0] != "Resource" && steps[0] != "DomainResource" {
		return false, nil
	}
	return redactSteps(res.ProtoReflect(), steps[1:])
}

func splitPath(path string) []string {
	var steps []string
	depth, start := 0, 0
	for i, r := range path {
		switch r {
		case '(':
			depth++
		case ')':
			depth--
		case '.':
			if depth == 0 {
				steps = append(steps, path[start:i])
				start = i + 1
			}
		}
	}
	return append(steps, path[start:])
}

func redactSteps(m protoreflect.Message, steps []string) (bool, error) {
	step := steps[0]
	if url, ok := extensionStep(step); ok {
		return redactExtension(m, url, steps[1:])
	}
	fd := fieldByJSONName(m.Descriptor(), step)
	if fd == nil {
		// Choice elements are written value[x] or valueQuantity in paths;
		// the proto has one field "value" for all of them.
		fd = fieldByJSONName(m.Descriptor(), strings.TrimSuffix(step, "[x]"))
	}
	if fd == nil {
		return false, nil
	}
	if !m.Has(fd) {
		return false, nil
	}
	if len(steps) == 1 {
		m.Clear(fd)
		return true, nil
	}
	if fd.Message() == nil {
		return false, nil
	}
	did := false
	var err error
	eachMessage(m, fd, func(child protoreflect.Message) {
		if err != nil {
			return
		}
		var d bool
		d, err = redactSteps(child, steps[1:])
		did = did || d
	})
	return did, err
}

func extensionStep(step string) (string, bool) {
	if !strings.HasPrefix(step, "extension(") || !strings.HasSuffix(step, ")") {
		return "", false
	}
	arg := strings.TrimSuffix(strings.TrimPrefix(step, "extension("), ")")
	return strings.Trim(arg, `'"`), true
}

func redactExtension(m protoreflect.Message, url string, rest []string) (bool, error) {
	fd := m.Descriptor().Fields().ByName("extension")
	if fd == nil || !fd.IsList() || !m.Has(fd) {
		return false, nil
	}
	list := m.Get(fd).List()
	kept := make([]protoreflect.Value, 0, list.Len())
	did := false
	for i := 0; i < list.Len(); i++ {
		v := list.Get(i)
		ext, ok := v.Message().Interface().(*dpb.Extension)
		if ok && ext.GetUrl().GetValue() == url {
			if len(rest) == 0 {
				did = true
				continue
			}
			d, err := redactSteps(v.Message(), rest)
			if err != nil {
				return false, err
			}
			did = did || d
		}
		kept = append(kept, v)
	}
	if len(kept) == list.Len() {
		return did, nil
	}
	list.Truncate(0)
	for _, v := range kept {
		list.Append(v)
	}
	if list.Len() == 0 {
		m.Clear(fd)
	}
	return did, nil
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
