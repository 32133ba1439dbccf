package narrative_test

import (
	"fmt"

	"github.com/migrant-health/mhg/conformance/narrative"
)

func ExampleNegotiate() {
	lang := narrative.Negotiate("uk-UA,uk;q=0.9,en;q=0.8")
	p := narrative.For(lang)
	fmt.Println(lang, p.Text("section.immunizations"))
	fmt.Println(narrative.For(narrative.Negotiate("fr")).Text("missing.timeout", "source", "nl-lsp", "country", "NL"))
	// Output:
	// uk Щеплення
	// nl-lsp (NL) did not answer in time.
}
