package cache

import (
	"context"
	"fmt"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

const instrumentationName = "github.com/migrant-health/mhg/gateway/cache"

// Span and metric attributes. They carry configuration (kinds, source ids)
// and counts only, never key parts, tags or values.
const (
	attrKind   = telemetry.AttrCacheKind
	attrSource = telemetry.AttrSourceID
	attrHit    = telemetry.AttrCacheHit
	attrOp     = attribute.Key("cache.op")
	attrCount  = attribute.Key("cache.keys")
	attrHits   = attribute.Key("cache.hits")
)

// instruments are the cache's own metrics; redisotel adds Redis's.
type instruments struct {
	hits        metric.Int64Counter
	misses      metric.Int64Counter
	loads       metric.Int64Counter
	storeErrors metric.Int64Counter
	unreadable  metric.Int64Counter
	reg         metric.Registration

	// sets memoises attribute sets per kind and source (or op): there are
	// few, and building one per call would allocate on every hit.
	mu   sync.RWMutex
	sets map[labelKey]metric.MeasurementOption
}

type labelKey struct {
	kind   Kind
	source string
	op     string
}

func newInstruments(mp metric.MeterProvider, degraded func() bool) (*instruments, error) {
	m := mp.Meter(instrumentationName)
	t := &instruments{sets: make(map[labelKey]metric.MeasurementOption)}
	var err error
	counter := func(name, desc string) metric.Int64Counter {
		if err != nil {
			return nil
		}
		var c metric.Int64Counter
		c, err = m.Int64Counter(name, metric.WithDescription(desc), metric.WithUnit("{call}"))
		return c
	}
	t.hits = counter("mhg.cache.hits", "Cache reads answered from the store, by kind and source.")
	t.misses = counter("mhg.cache.misses", "Cache reads not answered from the store, by kind and source.")
	t.loads = counter("mhg.cache.loads", "Loads run after misses (after singleflight), by kind and source.")
	t.storeErrors = counter("mhg.cache.store.errors", "Failed store calls, by operation.")
	t.unreadable = counter("mhg.cache.unreadable", "Stored values that did not decrypt and were deleted.")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	gauge, err := m.Int64ObservableGauge("mhg.cache.degraded",
		metric.WithDescription("1 while the cache store is bypassed or failing, else 0."))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	t.reg, err = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		v := int64(0)
		if degraded() {
			v = 1
		}
		o.ObserveInt64(gauge, v)
		return nil
	}, gauge)
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return t, nil
}

func (t *instruments) labels(kind Kind, source string) metric.MeasurementOption {
	return t.memo(labelKey{kind: kind, source: source}, func() attribute.Set {
		return attribute.NewSet(attrKind.String(string(kind)), attrSource.String(source))
	})
}

func (t *instruments) opLabel(op string) metric.MeasurementOption {
	return t.memo(labelKey{op: op}, func() attribute.Set { return attribute.NewSet(attrOp.String(op)) })
}

func (t *instruments) memo(k labelKey, build func() attribute.Set) metric.MeasurementOption {
	t.mu.RLock()
	o, ok := t.sets[k]
	t.mu.RUnlock()
	if ok {
		return o
	}
	o = metric.WithAttributeSet(build())
	t.mu.Lock()
	t.sets[k] = o
	t.mu.Unlock()
	return o
}

func (t *instruments) close() {
	if t.reg != nil {
		_ = t.reg.Unregister()
	}
}
