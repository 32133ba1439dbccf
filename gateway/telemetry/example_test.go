package telemetry_test

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

func ExampleNewLogHandler() {
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	log := slog.New(telemetry.NewLogHandler(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: noTime})))
	log.Info("source fetched",
		slog.String(string(telemetry.AttrSourceID), "de-sample"),
		slog.String("patient.name", "Maria Lopez"),                    // not allow-listed: dropped
		slog.String(string(telemetry.AttrResourceType), "Patient/42"), // wrong shape: dropped
		slog.Int(string(telemetry.AttrCount), 3),
	)
	// Output: {"level":"INFO","msg":"source fetched","mhg.source.id":"de-sample","mhg.count":3}
}

func ExampleSafeSpanName() {
	telemetry.AllowRoutes("GET /fhir/:type/:id")
	for _, name := range []string{"GET /fhir/:type/:id", "GET /fhir/Patient/8de41d0d", telemetry.SpanAuthzDecide, "lookup Maria Lopez"} {
		fmt.Println(telemetry.SafeSpanName(name, "example"))
	}
	// Output:
	// GET /fhir/:type/:id
	// GET
	// authz.decide
	// redacted
}
