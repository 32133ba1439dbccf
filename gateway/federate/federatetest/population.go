package federatetest

import (
	"testing"
	"testing/fstest"

	"github.com/migrant-health/mhg/conformance/examples/population"
	"github.com/migrant-health/mhg/gateway/source"
)

// PopulationSource serves a generated population (opts names its source
// id, country and profile) from a bundle source that holds nothing else.
func PopulationSource(tb testing.TB, opts population.Options) *source.Bundle {
	tb.Helper()
	b, err := population.NDJSON(opts)
	if err != nil {
		tb.Fatal(err)
	}
	src, err := source.OpenBundle(source.Options{ID: opts.Source, Country: opts.Country, Profile: opts.Profile, Kind: source.KindBundle,
		BuiltinDir: "pop", Builtin: fstest.MapFS{"pop/people.ndjson": {Data: b}}})
	if err != nil {
		tb.Fatal(err)
	}
	return src
}
