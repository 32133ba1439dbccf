package source_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"

	"github.com/migrant-health/mhg/gateway/source"
)

// A bundle source serves the resources of a directory; searches go by
// patient, identifier or _id.
func ExampleOpen() {
	src, err := source.Open(source.Options{
		ID: "au-sample", Country: "AU", Profile: "au-base",
		Kind: source.KindBundle, Dir: "testdata/ndjson", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	patients, _ := src.Search(ctx, "Patient", url.Values{"identifier": {"urn:oid:1.2.36.146.595.217.0.1|12345"}})
	for _, p := range patients {
		fmt.Println(p.Type, p.ID)
		conditions, _ := src.Search(ctx, "Condition", url.Values{"patient": {p.ID}})
		for _, c := range conditions {
			fmt.Println(c.Type, c.ID)
		}
	}
	_, err = src.Read(ctx, "Patient", "nobody")
	fmt.Println(err)
	// Output:
	// Patient example
	// Condition example
	// source au-sample: read Patient: not found at source
}
