package mappings

import "embed"

// Specs is the spec tree built into the binary: common/ (shared rules, the
// identifier registry, shared ConceptMaps) and one folder per national
// profile. Load compiles it.
//
//go:embed common de-basis
var Specs embed.FS
