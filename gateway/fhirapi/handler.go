package fhirapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/federate"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// TokenVerifier checks a bearer token and says who presented it.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (auth.Requester, error)
}

// Auditor records one AuditEvent per request that touches patient data.
type Auditor interface {
	Record(ctx context.Context, e audit.Entry) (string, error)
}

// Notifier is told about disclosures a policy says someone must hear of.
type Notifier interface {
	Notify(ctx context.Context, n audit.Notification)
}

// Check is one readiness check.
type Check struct {
	// Name labels the check in /readyz.
	Name string
	// Essential checks make /readyz answer 503 when they fail; the others
	// only mark the gateway degraded.
	Essential bool
	// Fn returns nil when healthy. It must honour ctx.
	Fn func(ctx context.Context) error
}

// Options configure the Handler.
type Options struct {
	// Federation answers FHIR requests. Required.
	Federation *federate.Service
	// Verifier checks bearer tokens. Required.
	Verifier TokenVerifier
	// Auditor records AuditEvents. Required: without it no data is
	// released (requests that would release data answer 503).
	Auditor Auditor
	// BaseURL is the FHIR base clients see (for links and fullUrls).
	BaseURL string
	// DefaultCount and MaxCount bound search pages. Zero means 20 and 200.
	DefaultCount, MaxCount int
	// MaxBodyBytes bounds request bodies. Zero means 4 MiB.
	MaxBodyBytes int64
	// MaxHeaderBytes bounds the request line and headers together. Zero
	// means 32 KiB.
	MaxHeaderBytes int
	// MaxAttachmentBytes bounds what $attachment serves (413 above it).
	// Zero means 10 MiB.
	MaxAttachmentBytes int64
	// Mapper serves POST /fhir/$to-mhp; nil disables it.
	Mapper Mapper
	// ToMHP bounds $to-mhp; see ToMHPLimits for the zero values.
	ToMHP ToMHPLimits
	// AuditSearch serves GET /fhir/AuditEvent to auditors; nil disables it.
	AuditSearch AuditSearcher
	// Policy serves the admin policy routes ($explain, status); nil
	// disables them.
	Policy PolicyAdmin
	// Notifier receives notify obligations (break-the-glass) once their
	// request is audited; nil drops them (the AuditEvent still records
	// the break-the-glass).
	Notifier Notifier
	// Status, when set, adds facts to /readyz beside the checks (this
	// replica's instance, policy revision, audit shipping lag). Nil adds
	// nothing.
	Status func(ctx context.Context) map[string]any
	// Checks are the readiness checks /readyz runs.
	Checks []Check
	// Metrics serves /metrics; nil answers 404 there.
	Metrics http.Handler
	// Version is reported in the CapabilityStatement and /healthz.
	Version string
	// Logger receives one log-safe line per request. Nil discards.
	Logger *slog.Logger
	// Operations registers extra FHIR operations (see Operation).
	Operations []Operation
	// MatchLimiter bounds how often one requester may call Patient/$match;
	// nil means no bound.
	MatchLimiter MatchLimiter
	// MatchDefaultCount is how many candidates a $match answer holds at
	// most when the request gives no count. Zero means 10.
	MatchDefaultCount int
	// RenderedBytes bounds the FHIR JSON kept of released resources, so
	// a resource released again exactly as before is not marshalled
	// again (see rendered). Zero means DefaultRenderedBytes; negative
	// marshals every time.
	RenderedBytes int64
}

// Handler is the gateway's HTTP handler.
type Handler struct {
	opts   Options
	engine *gin.Engine
	log    *slog.Logger
	ops    map[string]Operation
	// converting holds a token per $to-mhp conversion running.
	converting chan struct{}
	rendered   *rendered // nil: every release marshalled afresh
}

var _ http.Handler = (*Handler)(nil)

// servedTypes are the resource types the gateway reads and searches.
var servedTypes = []string{
	"Patient", "Condition", "AllergyIntolerance", "Immunization", "MedicationStatement",
	"MedicationRequest", "Observation", "Procedure", "DiagnosticReport", "DocumentReference",
}

var typeNamePattern = regexp.MustCompile(`^[A-Z][A-Za-z]{1,63}$`)

func init() { gin.SetMode(gin.ReleaseMode) }

// New builds the Handler.
func New(opts Options) (*Handler, error) {
	if opts.Federation == nil || opts.Verifier == nil || opts.Auditor == nil {
		return nil, errors.New("fhirapi: Federation, Verifier and Auditor are required")
	}
	if opts.DefaultCount <= 0 {
		opts.DefaultCount = 20
	}
	if opts.MaxCount <= 0 {
		opts.MaxCount = 200
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 4 << 20
	}
	if opts.MaxHeaderBytes <= 0 {
		opts.MaxHeaderBytes = 32 << 10
	}
	if opts.MaxAttachmentBytes <= 0 {
		opts.MaxAttachmentBytes = defaultMaxAttachmentBytes
	}
	if opts.MatchDefaultCount <= 0 {
		opts.MatchDefaultCount = 10
	}
	opts.ToMHP.defaults()
	opts.BaseURL = strings.TrimRight(opts.BaseURL, "/")
	h := &Handler{opts: opts, log: opts.Logger, ops: map[string]Operation{}, converting: make(chan struct{}, opts.ToMHP.MaxConcurrent),
		rendered: newRendered(opts.RenderedBytes)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	// Without patient-level operations given (a Linker configured by the
	// caller), the defaults serve them.
	ops := opts.Operations
	if !slices.ContainsFunc(ops, func(o Operation) bool { return o.ResourceType == "Patient" }) {
		defaults, err := defaultPatientOperations(opts.Federation)
		if err != nil {
			return nil, fmt.Errorf("fhirapi: %w", err)
		}
		ops = append(defaults, ops...)
	}
	if !slices.ContainsFunc(ops, func(o Operation) bool { return o.key() == matchOperation().key() }) {
		ops = append(ops, matchOperation())
	}
	if opts.Mapper != nil {
		ops = append(ops, toMHPOperation())
	}
	ops = append(ops, validateOperations()...)
	ops = append(ops, attachmentOperations()...)
	for _, op := range ops {
		h.ops[op.key()] = op
	}
	e := gin.New()
	e.HandleMethodNotAllowed = true
	e.ContextWithFallback = true
	// The router's own trailing-slash redirect answers before any
	// middleware, in HTML and without X-Request-Id; NoRoute redirects
	// instead, through the middleware.
	e.RedirectTrailingSlash = false
	e.Use(h.recover, otelgin.Middleware("mhg", otelgin.WithSpanNameFormatter(spanName)), h.requestID, h.limits, h.logRequests)
	e.NoRoute(h.noRoute)
	e.NoMethod(func(c *gin.Context) {
		h.fail(c, errorf(http.StatusMethodNotAllowed, "not-supported", "method %s is not supported here; this gateway is read-only", c.Request.Method))
	})
	e.GET("/healthz", h.healthz)
	e.GET("/readyz", h.readyz)
	e.GET("/metrics", h.metrics)

	h.registerAdmin(e)
	fhir := e.Group("/fhir")
	fhir.GET("/metadata", h.negotiated(h.capabilities))
	authed := fhir.Group("", h.authenticate)
	authed.GET("/AuditEvent", h.negotiated(h.searchAuditEvents))
	authed.GET("/:type", h.negotiated(h.typeLevel))
	authed.GET("/:type/:id", h.negotiated(h.instanceLevel))
	authed.GET("/:type/:id/:op", h.negotiated(h.instanceOperation))
	authed.POST("/:type", h.negotiated(h.postTypeLevel))
	authed.POST("/:type/:id", h.negotiated(h.postInstanceLevel))
	authed.POST("/:type/:id/:op", h.negotiated(h.instanceOperation))
	h.engine = e
	// Span names and http.route values pass the telemetry allow-list only
	// for templates the router registered.
	for _, r := range e.Routes() {
		telemetry.AllowRoutes(r.Method + " " + r.Path)
	}
	return h, nil
}

// noRoute answers 404, or redirects a path with a trailing slash to the
// same path without it (the query kept; never to another host).
func (h *Handler) noRoute(c *gin.Context) {
	p := c.Request.URL.EscapedPath()
	if len(p) > 1 && strings.HasSuffix(p, "/") && !strings.HasPrefix(p, "//") {
		loc := strings.TrimRight(p, "/")
		if q := c.Request.URL.RawQuery; q != "" {
			loc += "?" + q
		}
		status := http.StatusMovedPermanently
		if m := c.Request.Method; m != http.MethodGet && m != http.MethodHead {
			status = http.StatusPermanentRedirect
		}
		c.Header("Location", loc)
		h.write(c, status, mustJSON(Outcome{ResourceType: "OperationOutcome", Issue: []Issue{{
			Severity: "information", Code: "informational", Diagnostics: "FHIR URLs have no trailing slash; see Location",
		}}}))
		c.Abort()
		return
	}
	h.fail(c, errorf(http.StatusNotFound, "not-found", "no such endpoint"))
}

// ServeHTTP serves the gateway's routes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.engine.ServeHTTP(w, r) }

// spanName uses the route template, never the raw path, which holds ids.
func spanName(c *gin.Context) string {
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	return c.Request.Method + " " + route
}

func (h *Handler) recover(c *gin.Context) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			// The panic value and stack may quote request data: they go to
			// the log at error level without the request itself.
			// The stack is printed to stderr, outside the structured log
			// whose allow-list would drop it; it names code, not data.
			h.log.ErrorContext(c.Request.Context(), "panic serving request", "route", c.FullPath())
			os.Stderr.Write(debug.Stack())
			if !c.Writer.Written() {
				h.fail(c, errorf(http.StatusInternalServerError, "exception", "internal error"))
			}
			c.Abort()
		}
	}()
	c.Next()
}

// requestID gives every response an X-Request-Id equal to the trace id and
// a traceparent header, so a client, an AuditEvent and a trace line up.
func (h *Handler) requestID(c *gin.Context) {
	ctx := c.Request.Context()
	sc := trace.SpanContextFromContext(ctx)
	id := ""
	if sc.IsValid() {
		id = sc.TraceID().String()
		otel.GetTextMapPropagator().Inject(ctx, propagation.HeaderCarrier(c.Writer.Header()))
		if c.Writer.Header().Get("traceparent") == "" {
			(propagation.TraceContext{}).Inject(ctx, propagation.HeaderCarrier(c.Writer.Header()))
		}
	} else {
		var b [16]byte
		_, _ = rand.Read(b[:])
		id = hex.EncodeToString(b[:])
	}
	c.Set(ctxRequestID, id)
	c.Writer.Header().Set("X-Request-Id", id)
	c.Next()
}

const ctxRequestID = "mhg.request_id"

// limits enforces the header and body bounds with OperationOutcomes (the
// HTTP server's own limits are set higher, as a backstop, because they
// answer in plain text).
func (h *Handler) limits(c *gin.Context) {
	r := c.Request
	size := len(r.Method) + len(r.RequestURI) + 12
	for k, vs := range r.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if len(r.RequestURI) > h.opts.MaxHeaderBytes {
		h.fail(c, errorf(http.StatusRequestURITooLong, "too-long", "request URI longer than %d bytes", h.opts.MaxHeaderBytes))
		return
	}
	if size > h.opts.MaxHeaderBytes {
		h.fail(c, errorf(http.StatusRequestHeaderFieldsTooLarge, "too-long", "request headers larger than %d bytes", h.opts.MaxHeaderBytes))
		return
	}
	maxBody := h.opts.MaxBodyBytes
	if h.opts.Mapper != nil && isToMHP(c) {
		// A Bundle to convert is streamed, not held: it has its own bound.
		maxBody = max(maxBody, h.opts.ToMHP.MaxBundleBytes)
	}
	if r.ContentLength > maxBody {
		h.fail(c, errorf(http.StatusRequestEntityTooLarge, "too-long", "request body larger than %d bytes", maxBody))
		return
	}
	if r.Body != nil {
		r.Body = http.MaxBytesReader(c.Writer, r.Body, maxBody)
	}
	c.Next()
}

// logRequests writes one line per request: method, route template, status
// and duration. Never the path or query, which hold ids and identifiers.
func (h *Handler) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	h.log.InfoContext(c.Request.Context(), "request",
		"method", c.Request.Method, "route", route, "status", c.Writer.Status(),
		"duration_ms", float64(time.Since(start).Microseconds())/1000)
}

// authenticate verifies the bearer token and puts the Requester on the
// context.
func (h *Handler) authenticate(c *gin.Context) {
	headers := c.Request.Header.Values("Authorization")
	if len(headers) > 1 {
		h.unauthorized(c, "more than one Authorization header", auth.ErrAmbiguousCredentials)
		return
	}
	raw := ""
	if len(headers) == 1 {
		raw = headers[0]
	}
	tok, err := auth.BearerToken(raw)
	if err != nil {
		h.unauthorized(c, "a bearer token is required (SMART Backend Services)", err)
		return
	}
	req, err := h.opts.Verifier.Verify(c.Request.Context(), tok)
	if err != nil {
		if errors.Is(err, auth.ErrInsufficient) {
			h.fail(c, &Error{Status: http.StatusForbidden, Code: "forbidden", Message: "the token lacks a required claim", Err: err})
			return
		}
		var te *auth.TokenError
		msg := "the bearer token is not valid"
		if errors.As(err, &te) {
			msg = fmt.Sprintf("the bearer token is not valid (%s)", te.Reason)
		}
		h.unauthorized(c, msg, err)
		return
	}
	c.Request = c.Request.WithContext(auth.NewContext(c.Request.Context(), req))
	c.Next()
}

// unauthorized answers 401 with the RFC 6750 challenge for err.
func (h *Handler) unauthorized(c *gin.Context, msg string, err error) {
	c.Header("WWW-Authenticate", auth.Challenge("mhg", err))
	h.fail(c, errorf(http.StatusUnauthorized, "login", "%s", msg))
}

// negotiated checks _format and Accept before the handler runs.
func (h *Handler) negotiated(next gin.HandlerFunc) gin.HandlerFunc {
	return func(c *gin.Context) {
		if e := negotiate(c.Request); e != nil {
			h.fail(c, e)
			return
		}
		next(c)
	}
}

// fail answers with an OperationOutcome.
func (h *Handler) fail(c *gin.Context, err error) {
	e := asError(err)
	if ra := retryAfter(err); ra != "" {
		c.Header("Retry-After", ra)
	}
	if e.Status >= 500 {
		h.log.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "status", e.Status, "code", e.Code, "error.type", telemetry.ErrorType(e.Err))
	}
	h.write(c, e.Status, mustJSON(outcomeOf(e)))
	c.Abort()
}

func (h *Handler) write(c *gin.Context, status int, body []byte) {
	c.Header("Content-Type", contentType)
	c.Header("Cache-Control", "no-store")
	c.Status(status)
	_, _ = c.Writer.Write(body)
}

func (h *Handler) healthz(c *gin.Context) {
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, gin.H{"status": "up", "version": h.opts.Version})
}

func (h *Handler) readyz(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 3*time.Second)
	defer cancel()
	type result struct {
		Status    string `json:"status"`
		Essential bool   `json:"essential"`
		Error     string `json:"error,omitempty"`
	}
	checks := map[string]result{}
	status, code := "ready", http.StatusOK
	results := make([]error, len(h.opts.Checks))
	done := make(chan int, len(h.opts.Checks))
	for i, chk := range h.opts.Checks {
		go func() {
			results[i] = chk.Fn(ctx)
			done <- i
		}()
	}
	for range h.opts.Checks {
		<-done
	}
	for i, chk := range h.opts.Checks {
		r := result{Status: "ok", Essential: chk.Essential}
		if err := results[i]; err != nil {
			r.Status, r.Error = "failing", err.Error()
			if chk.Essential {
				status, code = "not-ready", http.StatusServiceUnavailable
			} else if status == "ready" {
				status = "degraded"
			}
		}
		checks[chk.Name] = r
	}
	body := gin.H{}
	if h.opts.Status != nil {
		for k, v := range h.opts.Status(ctx) {
			body[k] = v
		}
	}
	body["status"], body["checks"] = status, checks
	c.Header("Cache-Control", "no-store")
	c.JSON(code, body)
}

func (h *Handler) metrics(c *gin.Context) {
	if h.opts.Metrics == nil {
		h.fail(c, errorf(http.StatusNotFound, "not-found", "metrics are not enabled"))
		return
	}
	h.opts.Metrics.ServeHTTP(c.Writer, c.Request)
}
