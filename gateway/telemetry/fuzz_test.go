package telemetry_test

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/propagation"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// FuzzPropagatorExtract feeds client-controlled traceparent and baggage
// headers through the gateway's propagator: it must not panic, only
// allow-listed baggage may survive, and what it injects onward (to national
// sources) must extract to the same allow-listed members.
func FuzzPropagatorExtract(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "mhg.purpose=TREAT,patient.id=8de41d0d")
	f.Add("00-00000000000000000000000000000000-0000000000000000-00", "mhg.source.id=de-sample;prop=1")
	f.Add("garbage", "=,,=;;")
	f.Add("", "mhg.resource.type=Patient%2F42")
	f.Fuzz(func(t *testing.T, traceparent, bag string) {
		prop := telemetry.Propagator()
		in := http.Header{}
		in.Set("traceparent", traceparent)
		in.Set("baggage", bag)
		ctx := prop.Extract(context.Background(), propagation.HeaderCarrier(in))
		b := baggage.FromContext(ctx)
		for _, m := range b.Members() {
			if !telemetry.Keep(attribute.String(m.Key(), m.Value())) {
				t.Fatalf("extracted a member the allow-list refuses: %s=%q", m.Key(), m.Value())
			}
		}
		out := http.Header{}
		prop.Inject(ctx, propagation.HeaderCarrier(out))
		again := baggage.FromContext(prop.Extract(context.Background(), propagation.HeaderCarrier(out)))
		if again.Len() != b.Len() {
			t.Fatalf("inject/extract changed the baggage: %q -> %q", b.String(), again.String())
		}
	})
}
