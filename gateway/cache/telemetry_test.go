package cache

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTelemetry checks the spans and counters of a miss, a hit and a
// degraded store, and that no span attribute of the cache or of redisotel
// carries the key's parts.
func TestTelemetry(t *testing.T) {
	phi := []string{"X39499066X", "Conroy", "1975-10-26"}
	stores := []struct {
		name string
		open func(t *testing.T, tp *sdktrace.TracerProvider) Store
	}{
		{"memory", func(t *testing.T, _ *sdktrace.TracerProvider) Store { return mustMemory(t) }},
		{"redis", func(t *testing.T, tp *sdktrace.TracerProvider) Store {
			s, err := NewRedisStore(RedisOptions{URL: needRedisURL(t), Timeout: time.Second, TracerProvider: tp})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			spans := tracetest.NewSpanRecorder()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
			reader := sdkmetric.NewManualReader()
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
			fs := &failingStore{Store: st.open(t, tp)}
			c := newCache(t, fs, func(o *Options) {
				o.TracerProvider, o.MeterProvider = tp, mp
				o.Breaker = BreakerOptions{Failures: 1, OpenFor: time.Hour}
			})
			t.Cleanup(func() { _ = c.Close() })
			k := Key{Kind: KindResolve, Source: "us-sample", Parts: []string{"urn:oid:2.16.840.1.113883.4.3.25", phi[0]}, Tags: []string{phi[1]}}
			r := newRecorder(phi[1] + " " + phi[2])
			mustFetch(t, c, k, false, r, phi[1]+" "+phi[2])
			mustFetch(t, c, k, false, r, phi[1]+" "+phi[2])

			var cacheSpans []sdktrace.ReadOnlySpan
			allowed := map[attribute.Key]bool{attrKind: true, attrSource: true, attrHit: true}
			for _, s := range spans.Ended() {
				for _, a := range s.Attributes() {
					for _, p := range phi {
						if strings.Contains(a.Value.String(), p) {
							t.Errorf("span %s attribute %s holds %q", s.Name(), a.Key, p)
						}
					}
					if a.Key == "db.statement" {
						t.Errorf("span %s records the Redis command", s.Name())
					}
				}
				if s.Name() != "cache.get" {
					continue
				}
				cacheSpans = append(cacheSpans, s)
				for _, a := range s.Attributes() {
					if !allowed[a.Key] {
						t.Errorf("cache.get has attribute %s outside the allow-list", a.Key)
					}
				}
			}
			if len(cacheSpans) != 2 {
				t.Fatalf("%d cache.get spans, want 2", len(cacheSpans))
			}
			for i, want := range []bool{false, true} {
				if got := spanAttr(cacheSpans[i], attrHit); got != attribute.BoolValue(want) {
					t.Errorf("span %d cache.hit = %v, want %v", i, got.String(), want)
				}
			}
			if st.name == "redis" && len(spans.Ended()) <= 2 {
				t.Error("redisotel recorded no command spans")
			}

			labels := attribute.NewSet(attrKind.String("rslv"), attrSource.String("us-sample"))
			m := collect(t, reader)
			for name, want := range map[string]int64{"mhg.cache.hits": 1, "mhg.cache.misses": 1, "mhg.cache.loads": 1} {
				if got := sumFor(m, name, labels); got != want {
					t.Errorf("%s{rslv, us-sample} = %d, want %d", name, got, want)
				}
			}
			if got := gaugeValue(m, "mhg.cache.degraded"); got != 0 {
				t.Errorf("degraded gauge = %d with a healthy store", got)
			}

			fs.fail(errBoom)
			mustFetch(t, c, k, false, r, phi[1]+" "+phi[2])
			m = collect(t, reader)
			if got := gaugeValue(m, "mhg.cache.degraded"); got != 1 {
				t.Errorf("degraded gauge = %d with a failing store", got)
			}
			if got := sumFor(m, "mhg.cache.store.errors", attribute.NewSet(attrOp.String("get"))); got != 1 {
				t.Errorf("store errors{get} = %d, want 1", got)
			}
		})
	}
}

func spanAttr(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
	for _, a := range s.Attributes() {
		if a.Key == k {
			return a.Value
		}
	}
	return attribute.Value{}
}

func collect(t *testing.T, r *sdkmetric.ManualReader) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return rm
}

func findMetric(rm metricdata.ResourceMetrics, name string) (metricdata.Metrics, bool) {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m, true
			}
		}
	}
	return metricdata.Metrics{}, false
}

func sumFor(rm metricdata.ResourceMetrics, name string, labels attribute.Set) int64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return -1
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		return -1
	}
	for _, dp := range sum.DataPoints {
		if dp.Attributes.Equals(&labels) {
			return dp.Value
		}
	}
	return 0
}

func gaugeValue(rm metricdata.ResourceMetrics, name string) int64 {
	m, ok := findMetric(rm, name)
	if !ok {
		return -1
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok || len(g.DataPoints) != 1 {
		return -1
	}
	return g.DataPoints[0].Value
}
