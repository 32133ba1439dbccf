package search

import (
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	annpb "github.com/google/fhir/go/proto/google/fhir/proto/annotations_go_proto"
)

// leaf is an element a search parameter reads: a CodeableConcept, Coding,
// code, DateTime, Date, Instant or Period message.
type leaf struct{ m protoreflect.Message }

// collect follows each path from the resource and returns the messages
// at its end. google/fhir protos name fields after FHIR's JSON names, and
// a choice element is a message with a "choice" oneof, unwrapped here.
func collect(m protoreflect.Message, paths []string) []leaf {
	var out []leaf
	for _, p := range paths {
		out = walk(m, strings.Split(p, "."), out)
	}
	return out
}

func walk(m protoreflect.Message, path []string, out []leaf) []leaf {
	m = unchoice(m)
	if len(path) == 0 {
		return append(out, leaf{m})
	}
	fd := m.Descriptor().Fields().ByJSONName(path[0])
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return out
	}
	if fd.IsList() {
		l := m.Get(fd).List()
		for i := range l.Len() {
			out = walk(l.Get(i).Message(), path[1:], out)
		}
		return out
	}
	return walk(m.Get(fd).Message(), path[1:], out)
}

// unchoice returns the value a choice-type message holds.
func unchoice(m protoreflect.Message) protoreflect.Message {
	od := m.Descriptor().Oneofs().ByName("choice")
	if od == nil {
		return m
	}
	fd := m.WhichOneof(od)
	if fd == nil || fd.Message() == nil {
		return m
	}
	return m.Get(fd).Message()
}

func (l leaf) name() protoreflect.Name { return l.m.Descriptor().Name() }

// codings lists (system, code, display) of a CodeableConcept or Coding.
func (l leaf) codings() [][3]string {
	switch l.name() {
	case "CodeableConcept":
		var out [][3]string
		fd := l.m.Descriptor().Fields().ByName("coding")
		list := l.m.Get(fd).List()
		for i := range list.Len() {
			out = append(out, coding(list.Get(i).Message()))
		}
		return out
	case "Coding":
		return [][3]string{coding(l.m)}
	}
	return nil
}

func coding(m protoreflect.Message) [3]string {
	return [3]string{str(m, "system"), str(m, "code"), str(m, "display")}
}

// str reads the string value of a primitive field (String, Uri, Code).
func str(m protoreflect.Message, field protoreflect.Name) string {
	fd := m.Descriptor().Fields().ByName(field)
	if fd == nil || fd.Message() == nil || !m.Has(fd) {
		return ""
	}
	s, _ := primitive(m.Get(fd).Message())
	return s
}

// primitive reads a string primitive (String, Uri, Code): its value field.
func primitive(m protoreflect.Message) (string, bool) {
	vf := m.Descriptor().Fields().ByName("value")
	if vf == nil || vf.Kind() != protoreflect.StringKind {
		return "", false
	}
	return m.Get(vf).String(), true
}

// enumCode reads a code-typed element held as an enum (status codes):
// the FHIR code is the enum value's original code when the proto records
// one, else its name in lower case with '-' for '_'.
func (l leaf) enumCode() (string, bool) {
	vf := l.m.Descriptor().Fields().ByName("value")
	if vf == nil || vf.Kind() != protoreflect.EnumKind {
		return "", false
	}
	ev := vf.Enum().Values().ByNumber(l.m.Get(vf).Enum())
	if ev == nil {
		return "", false
	}
	if opts := ev.Options(); opts != nil && proto.HasExtension(opts, annpb.E_FhirOriginalCode) {
		if s, _ := proto.GetExtension(opts, annpb.E_FhirOriginalCode).(string); s != "" {
			return s, true
		}
	}
	return strings.ReplaceAll(strings.ToLower(string(ev.Name())), "_", "-"), true
}

func (l leaf) matchToken(t token) bool {
	if c, ok := l.enumCode(); ok {
		// A code element's system is implied by its binding: a search
		// naming a system is answered on the code alone.
		return c == t.code
	}
	if v, ok := primitive(l.m); ok {
		return !t.hasSystem && v == t.code
	}
	for _, c := range l.codings() {
		switch {
		case !t.hasSystem:
			if c[1] == t.code {
				return true
			}
		case t.code == "":
			if c[0] == t.system {
				return true
			}
		case c[0] == t.system && c[1] == t.code:
			return true
		}
	}
	return false
}

// matchText: :text matches the concept's text or any coding's display,
// case-insensitively, where the words start with the search text.
func (l leaf) matchText(s string) bool {
	texts := []string{}
	if l.name() == "CodeableConcept" {
		texts = append(texts, str(l.m, "text"))
	}
	for _, c := range l.codings() {
		texts = append(texts, c[2])
	}
	for _, t := range texts {
		t = strings.ToLower(t)
		if strings.HasPrefix(t, s) || strings.Contains(t, " "+s) {
			return true
		}
	}
	return false
}
