package mappings

import (
	"embed"
	"io/fs"
	"path"
)

// Specs is the spec tree built into the binary: common/ (shared rules, the
// identifier registry, shared ConceptMaps) and every folder with a
// mapping.yaml, with its ConceptMaps. A new national profile is one such
// folder: nothing in Go lists them. Load compiles it.
//
//go:embed common */mapping.yaml */conceptmaps
var Specs embed.FS

// ProfileIDs lists the national profile folders built into the binary,
// sorted, without compiling them: for help texts. Engine.Profiles lists
// those that compiled.
func ProfileIDs() []string {
	entries, _ := fs.ReadDir(Specs, ".")
	var out []string
	for _, e := range entries {
		if e.IsDir() && e.Name() != commonDir {
			if _, err := fs.Stat(Specs, path.Join(e.Name(), specFileName)); err == nil {
				out = append(out, e.Name())
			}
		}
	}
	return out
}
