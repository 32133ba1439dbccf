package telemetry

import (
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
)

// Span names the gateway's own packages use. A span whose name is neither one
// of these, nor a registered route template, nor an HTTP method, nor a Redis
// command from redisotel is exported under RedactedSpanName: a name built
// from a raw path or an identifier cannot leave the process.
const (
	SpanAuthzDecide     = "authz.decide"
	SpanSourceFetch     = "source.fetch"
	SpanCacheGet        = "cache.get"
	SpanCacheGetMany    = "cache.get_many"
	SpanMappingApply    = "mapping.apply"
	SpanAuditWrite      = "audit.write"
	SpanFederateResolve = "federate.resolve"
	SpanFederateSummary = "federate.summary"
)

// Span event names that pass; other event names are exported as
// RedactedEventName (their allowed attributes are kept).
const (
	EventException = "exception"
)

// RedactedSpanName and RedactedEventName replace names that are not known to
// be free of patient data.
const (
	RedactedSpanName  = "redacted"
	RedactedEventName = "event"
)

var knownSpans = map[string]bool{
	SpanAuthzDecide: true, SpanSourceFetch: true,
	SpanCacheGet: true, SpanCacheGetMany: true, SpanMappingApply: true, SpanAuditWrite: true,
	SpanFederateResolve: true, SpanFederateSummary: true,
}

var knownEvents = map[string]bool{
	EventException: true,
}

// redisScope is the instrumentation scope of redisotel; its span names are
// Redis command names, which hold no data.
const redisScope = "github.com/redis/go-redis/extra/redisotel"

var reRedisSpan = regexp.MustCompile(`^(redis\.dial|redis\.pipeline( [a-z]+)*|[a-z]+( [a-z]+)?)$`)

// routeSet is the set of route templates the HTTP layer registered: path ->
// methods ("" = any method).
type routeSet map[string]map[string]bool

// routeRegistry holds the registered templates. Reads are lock-free because
// every exported span and metric consults it.
type routeRegistry struct {
	mu  sync.Mutex
	cur atomic.Pointer[routeSet]
}

var routes routeRegistry

// AllowRoutes registers route templates, as "METHOD /path/:param" or
// "/path/:param" (any method). Span names "METHOD template" and http.route
// values pass the allow-list only once their template is registered; the
// HTTP layer registers its router's templates after building it (gin's
// Engine.Routes()). Registration is process-wide and additive.
func AllowRoutes(templates ...string) {
	routes.mu.Lock()
	defer routes.mu.Unlock()
	next := routeSet{}
	if cur := routes.cur.Load(); cur != nil {
		for p, ms := range *cur {
			next[p] = map[string]bool{}
			for m := range ms {
				next[p][m] = true
			}
		}
	}
	for _, t := range templates {
		method, path, ok := trimMethod(t)
		if !ok {
			method, path = "", t
		}
		if !strings.HasPrefix(path, "/") {
			continue
		}
		if next[path] == nil {
			next[path] = map[string]bool{}
		}
		next[path][method] = true
	}
	routes.cur.Store(&next)
}

func (r *routeRegistry) knownPath(path string) bool {
	cur := r.cur.Load()
	if cur == nil {
		return false
	}
	_, ok := (*cur)[path]
	return ok
}

func (r *routeRegistry) known(method, path string) bool {
	cur := r.cur.Load()
	if cur == nil {
		return false
	}
	ms, ok := (*cur)[path]
	return ok && (ms[""] || ms[method] || method == "HTTP")
}

// SafeSpanName returns name when it may be exported as it is, and otherwise
// the most a name can say without risk: the HTTP method alone, or
// RedactedSpanName. scope is the instrumentation scope name that created the
// span.
func SafeSpanName(name, scope string) string {
	if knownSpans[name] {
		return name
	}
	if isHTTPMethod(name) {
		return name
	}
	// "HTTP GET" (client spans) and otelgin's "HTTP GET route not found".
	if rest, ok := strings.CutPrefix(name, "HTTP "); ok {
		m, tail, _ := strings.Cut(rest, " ")
		if isHTTPMethod(m) && (tail == "" || tail == "route not found") {
			return name
		}
	}
	if method, path, ok := trimMethod(name); ok {
		if routes.known(method, path) {
			return name
		}
		return method
	}
	if strings.HasPrefix(scope, redisScope) && reRedisSpan.MatchString(name) {
		return name
	}
	return RedactedSpanName
}

func safeEventName(name string) string {
	if knownEvents[name] {
		return name
	}
	return RedactedEventName
}
