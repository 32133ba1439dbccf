package telemetry

import (
	"strings"

	"go.opentelemetry.io/otel/attribute"
)

// Attribute keys the gateway may attach to spans, metrics, log records and
// baggage. They are the whole allow-list: an attribute under any other key is
// dropped before it leaves the process, and so is an attribute under one of
// these keys whose value does not have the expected shape (an id where a
// resource type was expected, for example). Use these constants rather than
// string literals so a typo cannot silently lose an attribute.
const (
	// AttrSourceID is a configured source id (lower-case, digits, '-').
	AttrSourceID attribute.Key = "mhg.source.id"
	// AttrSourceCountry is a source's ISO 3166-1 alpha-2 country.
	AttrSourceCountry attribute.Key = "mhg.source.country"
	// AttrProfile is a national profile id (de-basis, us-core, ...).
	AttrProfile attribute.Key = "mhg.profile"
	// AttrDecision is a policy verdict: "allow" or "deny" ("error" in
	// metrics, for a decision that failed and so denied).
	AttrDecision attribute.Key = "mhg.decision"
	// AttrDecisionID is the policy decision id, as in the decision log.
	AttrDecisionID attribute.Key = "mhg.decision.id"
	// AttrRuleIDs are the rule ids behind a decision (string slice).
	AttrRuleIDs attribute.Key = "mhg.rule_ids"
	// AttrRuleID is one rule id; metrics use it so that each rule is a
	// series of its own.
	AttrRuleID attribute.Key = "mhg.rule_id"
	// AttrPolicyRevision is the policy revision that decided.
	AttrPolicyRevision attribute.Key = "mhg.policy.revision"
	// AttrPhase is the decision phase: "query" or "release".
	AttrPhase attribute.Key = "mhg.phase"
	// AttrCount is a count of resources, sources or entries.
	AttrCount attribute.Key = "mhg.count"
	// AttrFailed is a count of items that failed (resources not mapped).
	AttrFailed attribute.Key = "mhg.failed"
	// AttrCacheHit says whether a cache lookup hit.
	AttrCacheHit attribute.Key = "mhg.cache.hit"
	// AttrCacheKind is a cache kind (res, srch, rslv).
	AttrCacheKind attribute.Key = "mhg.cache.kind"
	// AttrResourceType is a FHIR resource type name.
	AttrResourceType attribute.Key = "mhg.resource.type"
	// AttrInteraction is a FHIR interaction (read, search-type, operation).
	AttrInteraction attribute.Key = "mhg.interaction"
	// AttrOperation is a FHIR operation name, with or without "$".
	AttrOperation attribute.Key = "mhg.operation"
	// AttrPurpose is an HL7 v3 PurposeOfUse code.
	AttrPurpose attribute.Key = "mhg.purpose"
	// AttrRequesterRole is the requester's role claim.
	AttrRequesterRole attribute.Key = "mhg.requester.role"
	// AttrRequesterCountry is the requesting organisation's country.
	AttrRequesterCountry attribute.Key = "mhg.requester.country"
	// AttrBreakGlass says that break-the-glass was invoked.
	AttrBreakGlass attribute.Key = "mhg.break_glass"
	// AttrBreakerState is a circuit breaker state: closed, half-open, open.
	AttrBreakerState attribute.Key = "mhg.breaker.state"
	// AttrOutcome is an audit outcome: success, denied, failed.
	AttrOutcome attribute.Key = "mhg.outcome"
	// AttrAuditSink names an audit sink: file or redis.
	AttrAuditSink attribute.Key = "mhg.audit.sink"
	// AttrAuditSeq is the sequence number of an audit record.
	AttrAuditSeq attribute.Key = "mhg.audit.seq"
	// AttrAuditEventID is the id of an AuditEvent (a random UUID): it lets
	// a notification name the record without naming the patient.
	AttrAuditEventID attribute.Key = "mhg.audit.event_id"
	// AttrNotifyTarget is who a notify obligation asks to tell (patient,
	// dpo, ...).
	AttrNotifyTarget attribute.Key = "mhg.notify.target"
	// AttrComponent names the gateway component that logs (authz, cache, ...).
	AttrComponent attribute.Key = "mhg.component"
	// AttrDurationMS is a duration in milliseconds.
	AttrDurationMS attribute.Key = "mhg.duration_ms"
	// AttrMappingIssues counts the issues a mapping reported.
	AttrMappingIssues attribute.Key = "mhg.mapping.issues"

	// AttrHTTPRoute is the route template (http.route); only templates
	// registered with AllowRoutes pass.
	AttrHTTPRoute attribute.Key = "http.route"
	// AttrHTTPMethod is the HTTP request method.
	AttrHTTPMethod attribute.Key = "http.request.method"
	// AttrHTTPStatus is the HTTP response status code.
	AttrHTTPStatus attribute.Key = "http.response.status_code"
	// AttrHTTPRequestSize and AttrHTTPResponseSize are body sizes in bytes.
	AttrHTTPRequestSize  attribute.Key = "http.request.body.size"
	AttrHTTPResponseSize attribute.Key = "http.response.body.size"
	// AttrURLScheme is http or https.
	AttrURLScheme attribute.Key = "url.scheme"
	// AttrServerAddress and AttrServerPort name the server side of a call:
	// the gateway itself, a national source or Redis, never a patient.
	AttrServerAddress attribute.Key = "server.address"
	AttrServerPort    attribute.Key = "server.port"
	// AttrNetworkProtocolName and AttrNetworkProtocolVersion describe the
	// transport (http, 1.1, 2).
	AttrNetworkProtocolName    attribute.Key = "network.protocol.name"
	AttrNetworkProtocolVersion attribute.Key = "network.protocol.version"
	// AttrErrorType classifies an error: a sentinel name, a Go type name or
	// a status code, never an error message.
	AttrErrorType attribute.Key = "error.type"
	// AttrExceptionType is the type of a recorded error (span events);
	// exception.message and exception.stacktrace are never allowed, as error
	// messages may quote documents.
	AttrExceptionType attribute.Key = "exception.type"
	// AttrDBSystem, AttrDBSystemName and AttrDBOperation describe a Redis
	// command (redisotel); db.statement, which holds keys and values, is
	// never allowed.
	AttrDBSystem     attribute.Key = "db.system"
	AttrDBSystemName attribute.Key = "db.system.name"
	AttrDBOperation  attribute.Key = "db.operation.name"
	// AttrRedisCommands counts the commands of a Redis pipeline.
	AttrRedisCommands attribute.Key = "db.redis.num_cmd"
)

// check says whether a value is acceptable under its key.
type check func(attribute.Value) bool

// shape is a cheap stand-in for a regular expression: a length range, the
// bytes allowed first and the bytes allowed after. Checks run for every
// exported attribute, where regexp would cost several times more.
type shape struct {
	min, max int
	first    *[256]bool
	rest     *[256]bool
}

func (sh shape) match(s string) bool {
	if len(s) < sh.min || len(s) > sh.max {
		return false
	}
	for i := 0; i < len(s); i++ {
		t := sh.rest
		if i == 0 && sh.first != nil {
			t = sh.first
		}
		if !t[s[i]] {
			return false
		}
	}
	return true
}

// set returns the byte table of the given ranges ("az09") and single bytes.
func set(ranges string, singles string) *[256]bool {
	var t [256]bool
	for i := 0; i+1 < len(ranges); i += 2 {
		for c := int(ranges[i]); c <= int(ranges[i+1]); c++ {
			t[c] = true
		}
	}
	for i := 0; i < len(singles); i++ {
		t[singles[i]] = true
	}
	return &t
}

var (
	lowerDigitDash = set("az09", "-")
	upper          = set("AZ", "")
	lower          = set("az", "")
	letters        = set("azAZ", "")
	lettersDash    = set("azAZ", "-")
	lowerDot       = set("az", "._")
	digitsDot      = set("09", ".")

	shapeSourceID = shape{min: 1, max: 16, rest: lowerDigitDash}
	shapeCountry  = shape{min: 2, max: 2, rest: upper}
	shapeSlug     = shape{min: 1, max: 32, first: set("az09", ""), rest: lowerDigitDash}
	shapeToken    = shape{min: 1, max: 128, rest: set("azAZ09", "_.:/+-")}
	shapeResType  = shape{min: 2, max: 64, first: upper, rest: letters}
	shapeOp       = shape{min: 1, max: 64, first: set("az", "$"), rest: lettersDash}
	shapePurpose  = shape{min: 2, max: 16, rest: upper}
	shapeTypeName = shape{min: 1, max: 128, rest: set("azAZ09", "_.*/[]-")}
	shapeHost     = shape{min: 1, max: 253, rest: set("azAZ09", ".:[]-")}
	shapeProtoVer = shape{min: 1, max: 8, rest: digitsDot}
	shapeProtoDur = shape{min: 2, max: 32, first: set("09", ""), rest: set("09", ".hmnsµu")}
	shapeRedisOp  = shape{min: 1, max: 64, first: lower, rest: set("az", ". ")}
	shapeLower    = shape{min: 1, max: 32, first: lower, rest: lowerDot}
)

func str(sh shape) check {
	return func(v attribute.Value) bool { return v.Type() == attribute.STRING && sh.match(v.AsString()) }
}

func oneOf(values ...string) check {
	return func(v attribute.Value) bool {
		if v.Type() != attribute.STRING {
			return false
		}
		s := v.AsString()
		for _, w := range values {
			if s == w {
				return true
			}
		}
		return false
	}
}

func strs(sh shape) check {
	return func(v attribute.Value) bool {
		if v.Type() != attribute.STRINGSLICE {
			return false
		}
		for _, s := range v.AsStringSlice() {
			if !sh.match(s) {
				return false
			}
		}
		return true
	}
}

func isInt(v attribute.Value) bool  { return v.Type() == attribute.INT64 }
func isBool(v attribute.Value) bool { return v.Type() == attribute.BOOL }
func isNumber(v attribute.Value) bool {
	return v.Type() == attribute.INT64 || v.Type() == attribute.FLOAT64
}

func isRoute(v attribute.Value) bool {
	return v.Type() == attribute.STRING && routes.knownPath(v.AsString())
}

var httpMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "_OTHER"}

// allowList is the one allow-list. Each key maps to the check its value
// must pass.
var allowList = map[attribute.Key]check{
	AttrSourceID:         str(shapeSourceID),
	AttrSourceCountry:    str(shapeCountry),
	AttrProfile:          str(shapeSlug),
	AttrDecision:         oneOf("allow", "deny", "error"),
	AttrDecisionID:       str(shapeToken),
	AttrRuleIDs:          strs(shapeToken),
	AttrRuleID:           str(shapeToken),
	AttrPolicyRevision:   str(shapeToken),
	AttrPhase:            oneOf("query", "release"),
	AttrCount:            isInt,
	AttrFailed:           isInt,
	AttrCacheHit:         isBool,
	AttrCacheKind:        str(shapeSlug),
	AttrResourceType:     str(shapeResType),
	AttrInteraction:      str(shapeSlug),
	AttrOperation:        str(shapeOp),
	AttrPurpose:          str(shapePurpose),
	AttrRequesterRole:    str(shapeSlug),
	AttrRequesterCountry: str(shapeCountry),
	AttrBreakGlass:       isBool,
	AttrBreakerState:     oneOf("closed", "half-open", "open"),
	AttrOutcome:          oneOf("success", "denied", "failed"),
	AttrAuditSink:        oneOf("file", "redis"),
	AttrAuditSeq:         isInt,
	AttrAuditEventID:     str(shapeToken),
	AttrNotifyTarget:     str(shapeSlug),
	AttrComponent:        str(shapeLower),
	AttrDurationMS:       isNumber,
	AttrMappingIssues:    isInt,

	AttrHTTPRoute:              isRoute,
	AttrHTTPMethod:             oneOf(httpMethods...),
	AttrHTTPStatus:             isInt,
	AttrHTTPRequestSize:        isInt,
	AttrHTTPResponseSize:       isInt,
	AttrURLScheme:              oneOf("http", "https"),
	AttrServerAddress:          str(shapeHost),
	AttrServerPort:             isInt,
	AttrNetworkProtocolName:    oneOf("http", "https", "redis"),
	AttrNetworkProtocolVersion: str(shapeProtoVer),
	AttrErrorType:              str(shapeTypeName),
	AttrExceptionType:          str(shapeTypeName),
	AttrDBSystem:               str(shapeLower),
	AttrDBSystemName:           str(shapeLower),
	AttrDBOperation:            str(shapeRedisOp),
	AttrRedisCommands:          isInt,

	// Keys other gateway packages used before these constants existed
	// (cache, authz, federate, source spans, metrics and logs). They are
	// held to the same value shapes; new code uses the Attr constants.
	"cache.op":      str(shapeSlug),
	"cache.keys":    isInt,
	"cache.hits":    isInt,
	"stage":         str(shapeSlug),
	"resource_type": str(shapeResType),
	"type":          str(shapeResType),
	"error_class":   str(shapeTypeName),
	"decision_id":   str(shapeToken),
	"revision":      str(shapeToken),
	"previous":      str(shapeToken),
	"hash":          str(shapeToken),
	"kind":          str(shapeSlug),
	"op":            str(shapeSlug),
	"count":         isInt,
	"attempt":       isInt,
	"max_pages":     isInt,
	"duration":      isNumber,
	"method":        oneOf(httpMethods...),
	"route":         isRoute,
	"status":        isInt,
	"duration_ms":   isNumber,
	"files":         isInt,
	"resources":     isInt,
	"panic_type":    str(shapeTypeName),
	"code":          str(shapeSlug),
	"timeout":       str(shapeProtoDur),
	"from":          oneOf("closed", "half-open", "open"),
	"to":            oneOf("closed", "half-open", "open"),
}

// AllowedKeys returns the keys of the allow-list, for documentation and for
// the collector's second guard (deploy/otel-collector.yaml lists the same).
func AllowedKeys() []attribute.Key {
	keys := make([]attribute.Key, 0, len(allowList))
	for k := range allowList {
		keys = append(keys, k)
	}
	return keys
}

// Keep reports whether an attribute may leave the process: its key is in the
// allow-list and its value has the shape that key promises.
func Keep(kv attribute.KeyValue) bool {
	c, ok := allowList[kv.Key]
	return ok && c(kv.Value)
}

// filterAttrs returns the allowed attributes of in and how many were
// dropped. It returns in itself when nothing is dropped, which is the common
// case and saves a copy.
func filterAttrs(in []attribute.KeyValue) ([]attribute.KeyValue, int) {
	for i, kv := range in {
		if Keep(kv) {
			continue
		}
		// First drop found: copy what was kept so far, then filter the rest.
		out := make([]attribute.KeyValue, i, len(in)-1)
		copy(out, in[:i])
		for _, kv := range in[i+1:] {
			if Keep(kv) {
				out = append(out, kv)
			}
		}
		return out, len(in) - len(out)
	}
	return in, 0
}

// isHTTPMethod reports whether s is an HTTP method as span names use it
// ("HTTP" stands for any non-standard method in otelgin's names).
func isHTTPMethod(s string) bool {
	if s == "HTTP" {
		return true
	}
	for _, m := range httpMethods {
		if s == m {
			return true
		}
	}
	return false
}

// trimMethod splits "GET /fhir/Patient/:id" into its method and path.
func trimMethod(name string) (method, path string, ok bool) {
	method, path, ok = strings.Cut(name, " ")
	if !ok || !isHTTPMethod(method) {
		return "", "", false
	}
	return method, path, true
}
