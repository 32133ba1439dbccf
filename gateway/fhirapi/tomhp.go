package fhirapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/mappings"
)

// Mapper maps national resources into the MHP for $to-mhp.
type Mapper interface {
	// Map maps one national resource.
	Map(profile string, in []byte, opts mappings.Options) (mappings.Result, error)
	// MapEntry maps the resource of entry i of a Bundle; what cannot be
	// mapped is an error issue at that entry.
	MapEntry(profile string, i int, resource []byte, opts mappings.Options) mappings.Result
	// Profiles lists the national profiles known.
	Profiles() []string
}

// ToMHPLimits bound POST $to-mhp, which works on whatever a client sends:
// no request may use up the gateway. Each zero value means the default
// its comment gives.
type ToMHPLimits struct {
	// MaxBundleBytes bounds a Bundle body. A Bundle is streamed through a
	// temporary file, so memory stays flat whatever its size; a single
	// resource, a Parameters body and each Bundle entry are held whole and
	// bounded by Options.MaxBodyBytes. Zero means 64 MiB.
	MaxBundleBytes int64
	// MaxEntries bounds the entries of one Bundle. Zero means 20,000.
	MaxEntries int
	// MaxOutputBytes bounds the answer. Zero means 128 MiB.
	MaxOutputBytes int64
	// MaxConcurrent bounds conversions running at once; a request beyond
	// it gets 429. Zero means 2.
	MaxConcurrent int
	// SpoolDir holds the temporary files of conversions in progress,
	// removed when their request ends. Empty means os.TempDir().
	SpoolDir string
}

func (l *ToMHPLimits) defaults() {
	if l.MaxBundleBytes <= 0 {
		l.MaxBundleBytes = 64 << 20
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 20_000
	}
	if l.MaxOutputBytes <= 0 {
		l.MaxOutputBytes = 128 << 20
	}
	if l.MaxConcurrent <= 0 {
		l.MaxConcurrent = 2
	}
}

// opToMHP is the operation's name, as policies see it (conversion.rego).
const opToMHP = "to-mhp"

// toMHPOperation is POST [base]/$to-mhp?profile=<id>: EHR vendors send a
// national resource or Bundle and get the MHP result, or an
// OperationOutcome listing what could not be mapped. Nothing is stored and
// no source is contacted. The policy decides who may convert (the
// "conversion" class), and the request is audited like every other.
func toMHPOperation() Operation {
	return Operation{
		Name: opToMHP, Level: "system", Definition: conformance.OpToMHP, Methods: []string{http.MethodPost},
		Handle: func(h *Handler, c *gin.Context, _, _ string) { h.toMHP(c) },
	}
}

// isToMHP reports whether c is a $to-mhp request, whose body may be larger
// than other requests'.
func isToMHP(c *gin.Context) bool {
	return c.Request.Method == http.MethodPost && c.FullPath() == "/fhir/:type" && c.Param("type") == "$"+opToMHP
}

func (h *Handler) toMHP(c *gin.Context) {
	if h.opts.Mapper == nil {
		h.fail(c, errorf(http.StatusNotFound, "not-supported", "$to-mhp is not enabled"))
		return
	}
	if ct := c.GetHeader("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || !jsonTypes[mt] {
			h.fail(c, errorf(http.StatusUnsupportedMediaType, "not-supported", "send application/fhir+json"))
			return
		}
	}
	req := h.request(c, interactionOp, "", opToMHP)
	res, err := h.opts.Federation.Authorize(c.Request.Context(), req)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	select {
	case h.converting <- struct{}{}:
		defer func() { <-h.converting }()
	default:
		c.Header("Retry-After", "1")
		h.finish(c, req, res, errorf(http.StatusTooManyRequests, "throttled",
			"%d conversions are running, the most this gateway runs at once; try again shortly", h.opts.ToMHP.MaxConcurrent), 0, nil)
		return
	}
	conv, err := h.convert(c)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return
	}
	defer conv.close()
	if conv.unmappable != nil {
		h.finishWith(c, req, res, nil, http.StatusUnprocessableEntity, nil, func() {
			h.write(c, http.StatusUnprocessableEntity, mustJSON(*conv.unmappable))
		})
		return
	}
	h.finishWith(c, req, res, nil, http.StatusOK, func(e *audit.Entry) {
		for typ, n := range conv.released {
			e.Released[typ] += n
		}
	}, func() {
		c.Header("Content-Type", contentType)
		c.Header("Cache-Control", "no-store")
		c.Header("Content-Length", strconv.FormatInt(conv.size, 10))
		c.Status(http.StatusOK)
		// The time the conversion took does not count against sending
		// its answer, which has its own deadline by its size.
		_ = http.NewResponseController(c.Writer).SetWriteDeadline(time.Now().Add(sendTime(conv.size)))
		_, _ = io.Copy(c.Writer, io.NewSectionReader(conv.out, 0, conv.size))
	})
}

// convert reads the request body and maps it, into a spool file.
func (h *Handler) convert(c *gin.Context) (*conversion, error) {
	lim := h.opts.ToMHP
	in, err := os.CreateTemp(lim.SpoolDir, "mhg-to-mhp-in-*")
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "no room for the conversion", Err: err}
	}
	// Unlinked at once where the system allows: nothing is left behind,
	// whatever happens to the process.
	_ = os.Remove(in.Name())
	defer in.Close()
	size, err := io.Copy(in, c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, errorf(http.StatusRequestEntityTooLarge, "too-long", "request body larger than %d bytes", tooBig.Limit)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || c.Request.Context().Err() != nil {
			return nil, errorf(http.StatusBadRequest, "invalid", "the request body could not be read")
		}
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "no room for the conversion", Err: err}
	}
	cv := &converter{
		mapper: h.opts.Mapper, limits: lim, maxResource: h.opts.MaxBodyBytes,
		profile: c.Query("profile"), ctx: c.Request.Context(),
	}
	return cv.run(io.NewSectionReader(in, 0, size), size)
}

// sendTime is how long sending an answer of n bytes may take: a minute,
// plus a second per MiB (a client reading slower holds a conversion slot
// for no good reason).
func sendTime(n int64) time.Duration { return time.Minute + time.Duration(n>>20)*time.Second }

// profileError is the 400 for a missing or unknown profile, or nil.
func (cv *converter) profileError() error {
	known := strings.Join(cv.mapper.Profiles(), ", ")
	if cv.profile == "" {
		return errorf(http.StatusBadRequest, "required", "the profile parameter is required (%s)", known)
	}
	if !slices.Contains(cv.mapper.Profiles(), cv.profile) {
		return errorf(http.StatusBadRequest, "not-supported", "unknown national profile; known: %s", known)
	}
	return nil
}

func mappingOutcome(issues []mappings.Issue) Outcome {
	oo := Outcome{ResourceType: "OperationOutcome", Issue: []Issue{}}
	for _, is := range issues {
		oo.Issue = append(oo.Issue, mappingIssue(is))
	}
	return oo
}

func mappingIssue(is mappings.Issue) Issue {
	sev := is.Severity
	switch sev {
	case "fatal", "error", "warning", "information":
	default:
		sev = "information"
	}
	code := is.Code
	if code == "" {
		code = "informational"
	}
	i := Issue{Severity: sev, Code: code, Diagnostics: is.Message}
	if is.Path != "" {
		i.Expression = []string{is.Path}
	}
	return i
}

// toMHPFullURL is the fullUrl of a converted resource in the answer.
func toMHPFullURL(typ, id string) string { return fmt.Sprintf("urn:mhg:to-mhp:%s/%s", typ, id) }

// profileAndResource reads the profile and resource parameters of $to-mhp
// and $validate: the resource is the body, or the "resource" of a
// Parameters body; the profile is the query's, else the Parameters'.
// $to-mhp, which spools its body rather than holding it, applies the same
// rule through withParameters once it knows the body is a Parameters.
func profileAndResource(c *gin.Context, body []byte) (profile string, resource []byte) {
	profile, resource, _ = withParameters(c.Query("profile"), body)
	return profile, resource
}

// withParameters applies a Parameters body to the profile the query gave:
// the resource is the Parameters' "resource", the profile the query's,
// else the Parameters'. When body is no Parameters it returns profile and
// body as they are, and ok false.
func withParameters(profile string, body []byte) (string, []byte, bool) {
	p, res, ok := fromParameters(body)
	if !ok {
		return profile, body, false
	}
	if profile == "" {
		profile = p
	}
	return profile, res, true
}

// fromParameters unpacks a Parameters body ({profile, resource}), as
// $to-mhp and $validate take it.
func fromParameters(body []byte) (profile string, resource []byte, ok bool) {
	var p struct {
		ResourceType string `json:"resourceType"`
		Parameter    []struct {
			Name           string          `json:"name"`
			ValueCode      string          `json:"valueCode"`
			ValueStr       string          `json:"valueString"`
			ValueURI       string          `json:"valueUri"`
			ValueCanonical string          `json:"valueCanonical"`
			Resource       json.RawMessage `json:"resource"`
		} `json:"parameter"`
	}
	if json.Unmarshal(body, &p) != nil || p.ResourceType != "Parameters" {
		return "", nil, false
	}
	for _, prm := range p.Parameter {
		switch prm.Name {
		case "profile":
			profile = prm.ValueCode + prm.ValueStr + prm.ValueURI + prm.ValueCanonical
		case "resource":
			resource = prm.Resource
		}
	}
	return profile, resource, true
}
