package mappings_test

import (
	"fmt"

	"github.com/migrant-health/mhg/mappings"
)

// A UK Core Patient whose overseas visitor charging category reveals a
// temporary visa: the MHP Patient keeps the clinical identity, the charging
// category moves to a restricted migration-context (class S), and ethnicity
// stays in the country of origin.
func ExampleEngine_Map() {
	e, err := mappings.Load()
	if err != nil {
		panic(err)
	}
	in := []byte(`{
	  "resourceType": "Patient", "id": "uk-42", "gender": "female", "birthDate": "1990-08",
	  "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9449306621"}],
	  "name": [{"family": "Sharma", "given": ["Priya"]}],
	  "extension": [
	    {"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-OverseasVisitorChargingCategory",
	     "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-OverseasVisitorChargingCategory", "code": "B"}]}},
	    {"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-EthnicCategory",
	     "valueCodeableConcept": {"coding": [{"system": "https://fhir.hl7.org.uk/CodeSystem/UKCore-EthnicCategoryEngland", "code": "H"}]}}
	  ]}`)
	res, err := e.Map("uk-core", in, mappings.Options{SourceID: "uk-demo"})
	if err != nil {
		panic(err)
	}
	for _, out := range res.Outputs {
		fmt.Println(out.Type, out.Class, out.UpstreamID)
	}
	for _, is := range res.Issues {
		fmt.Println(is.Severity, is.Path)
	}
	// Output:
	// Patient C uk-42
	// Observation S uk-42/migration-context
	// information Patient.extension[0]
	// information Patient.extension[1]
}
