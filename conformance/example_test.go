package conformance_test

import (
	"fmt"

	"github.com/migrant-health/mhg/conformance"
)

func ExampleCheck() {
	patient := `{
	  "resourceType": "Patient",
	  "meta": {"profile": ["https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-patient"]},
	  "name": [{"use": "official"}],
	  "_birthDate": {"extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]}
	}`
	for _, issue := range conformance.Check(patient) {
		fmt.Println(issue)
	}
	// Output:
	// error invariant at Patient.name[0] [ips-pat-1]: Patient.name.given, Patient.name.family or Patient.name.text SHALL be present
}

func ExampleCountryAlpha2() {
	for _, code := range []string{"DEU", "fr", "UK"} {
		a2, ok := conformance.CountryAlpha2(code)
		fmt.Printf("%s -> %q %v\n", code, a2, ok)
	}
	// Output:
	// DEU -> "DE" true
	// fr -> "FR" true
	// UK -> "" false
}

func ExampleCheck_statusRevealing() {
	issues := conformance.Check(`{"resourceType":"Patient","meta":{"profile":["https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-patient"]},"name":[{"family":"X"}],"birthDate":"1990","identifier":[{"system":"http://nphies.sa/identifier/iqama","value":"1"}]}`)
	for _, is := range issues {
		fmt.Println(is)
	}
	fmt.Println(conformance.HasErrors(issues))
	// Output:
	// error invariant at Patient.identifier[0] [mhp-pat-2]: Class S data (status-revealing identifiers, residence, charging or migration status) is not in Patient: it belongs in mhp-migration-context
	// true
}
