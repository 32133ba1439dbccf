package federate_test

import (
	"fmt"

	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/mappings"
)

// A deployment starts from the registry the mapping engine ships
// (passports cross borders, national identifiers stay domestic,
// status-revealing ones are never used) and adds what its agreements
// allow: here UNHCR case numbers, and the Dutch BSN for German sources.
// The Linker then resolves identities with it:
// federate.NewLinker(svc, federate.LinkerOptions{Identity: reg}).
func ExampleNewIdentityRegistry() {
	eng, err := mappings.Load()
	if err != nil {
		panic(err)
	}
	systems := federate.WithIdentifierSystems(federate.DefaultIdentifierSystems(eng),
		federate.IdentifierSystem{ID: "unhcr-case", Systems: []string{"https://unhcr.example/progres/case"},
			Scope: federate.ScopeCrossBorder},
		federate.IdentifierSystem{ID: "nl-bsn", Systems: []string{"http://fhir.nl/fhir/NamingSystem/bsn", "urn:oid:2.16.840.1.113883.2.4.6.3"},
			Country: "NL", Scope: federate.ScopeDomestic, Partners: []string{"DE"}},
	)
	reg, err := federate.NewIdentityRegistry(systems)
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
