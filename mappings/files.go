package mappings

import "embed"

// Specs is the spec tree built into the binary: common/ (shared rules, the
// identifier registry, shared ConceptMaps) and one folder per national
// profile. Load compiles it.
//
//go:embed common us-core uk-core de-basis nl-core ch-core au-base fr-core ips ke-core
var Specs embed.FS
