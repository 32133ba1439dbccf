package mappings_test

import (
	"fmt"

	"github.com/migrant-health/mhg/mappings"
)

// A deployment starts from the registry the mapping engine ships
// (passports cross borders, national identifiers stay domestic,
// status-revealing ones are never used) and adds what its agreements
// allow: here UNHCR case numbers, and the Dutch BSN for German sources.
// The gateway's Linker then resolves identities with it, and a summary
// keeps only the identifiers it lets cross a border.
func ExampleEngine_IdentifierRegistry() {
	eng, err := mappings.Load()
	if err != nil {
		panic(err)
	}
	reg, err := eng.IdentifierRegistry(
		mappings.IdentifierSystem{ID: "unhcr-case", Systems: []string{"https://unhcr.example/progres/case"},
			Scope: mappings.ScopeCrossBorder},
		mappings.IdentifierSystem{ID: "nl-bsn", Systems: []string{"http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3"},
			Country: "NL", Scope: mappings.ScopeDomestic, Partners: []string{"DE"}},
	)
	if err != nil {
		panic(err)
	}
	for _, s := range reg.Systems() {
		switch s.ID {
		case "passport", "nl-bsn", "unhcr-case", "sa-iqama":
			fmt.Println(s.ID, s.Scope, s.Partners)
		}
	}
	// Output:
	// nl-bsn domestic [DE]
	// passport cross-border []
	// sa-iqama none []
	// unhcr-case cross-border []
}
