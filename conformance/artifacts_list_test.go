package conformance

// Artifacts returns every shipped MHP artifact, ordered by file name.
func Artifacts() []ArtifactFile {
	idx := loadArtifacts()
	out := make([]ArtifactFile, len(idx.all))
	for i, a := range idx.all {
		out[i] = a.clone()
	}
	return out
}

// StructureDefinitions returns the MHP profiles and extensions.
func StructureDefinitions() []ArtifactFile {
	return artifactsOfType("StructureDefinition")
}

// ValueSets returns the MHP ValueSets.
func ValueSets() []ArtifactFile { return artifactsOfType("ValueSet") }

// CodeSystems returns the MHP CodeSystems.
func CodeSystems() []ArtifactFile { return artifactsOfType("CodeSystem") }

// OperationDefinitions returns the operations the gateway defines
// ($summary, $everything, $to-mhp).
func OperationDefinitions() []ArtifactFile { return artifactsOfType("OperationDefinition") }

func artifactsOfType(rt string) []ArtifactFile {
	var out []ArtifactFile
	for _, a := range loadArtifacts().all {
		if a.ResourceType == rt {
			out = append(out, a.clone())
		}
	}
	return out
}
