package federate

import (
	"fmt"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/mappings"
)

// containedCount returns how many contained resources a resource holds.
func containedCount(cr *rpb.ContainedResource) int {
	m := r4.Resource(cr)
	if m == nil {
		return 0
	}
	pm := m.ProtoReflect()
	fd := pm.Descriptor().Fields().ByName("contained")
	if fd == nil || !fd.IsList() {
		return 0
	}
	return pm.Get(fd).List().Len()
}

// resolveContained keeps FHIR dom-3 on a released resource some of whose
// contained resources the policy's obligations removed: every reference to
// one of them becomes display-only, and the loss report says so. It
// returns the resource to release (cr itself when nothing changed).
func resolveContained(cr *rpb.ContainedResource) (*rpb.ContainedResource, []mappings.Issue, error) {
	b, err := r4.Marshal(cr)
	if err != nil {
		return nil, nil, fmt.Errorf("contained references: %w", err)
	}
	fixed, paths := r4.ResolveContained(b)
	if len(paths) == 0 {
		return cr, nil, nil
	}
	out, err := r4.Parse(fixed)
	if err != nil {
		return nil, nil, fmt.Errorf("contained references: %w", err)
	}
	issues := make([]mappings.Issue, 0, len(paths))
	for _, p := range paths {
		issues = append(issues, mappings.Issue{Severity: "warning", Code: "incomplete", Path: p,
			Message: "the contained resource this reference pointed to was withheld by policy; only the reference's display remains"})
	}
	return out, issues, nil
}
