package fhirapi

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/federate"
)

// PolicyAdmin is what the admin routes need of the policy engine.
type PolicyAdmin interface {
	Explain(ctx context.Context, in authz.Input) (authz.Explanation, error)
	Status() authz.Status
}

// Administration operations, as policies name them (policies/mhg/authz/
// admin.rego): only administrators may run them.
const (
	opPurgeCache    = "purge-cache"
	opForgetPatient = "forget-patient"
	opExplainPolicy = "explain-policy"
)

// registerAdmin adds the /admin routes: bearer token required, every call
// decided by policy and audited.
func (h *Handler) registerAdmin(e *gin.Engine) {
	admin := e.Group("/admin", h.authenticate)
	admin.POST("/cache/$purge", h.adminPurge)
	admin.POST("/cache/$forget-patient", h.adminForgetPatient)
	admin.POST("/policy/$explain", h.adminExplain)
	admin.GET("/policy", h.adminPolicyStatus)
}

// adminAuthorize asks the policy whether the requester may run op.
func (h *Handler) adminAuthorize(c *gin.Context, op string) (federate.Request, *federate.Result, bool) {
	req := h.request(c, "operation", "", op)
	res, err := h.opts.Federation.Authorize(c.Request.Context(), req)
	if err != nil {
		h.finish(c, req, res, err, 0, nil)
		return req, res, false
	}
	return req, res, true
}

// info answers 200 with a one-issue OperationOutcome.
func info(msg string) []byte {
	return mustJSON(Outcome{ResourceType: "OperationOutcome", Issue: []Issue{{Severity: "information", Code: "informational", Diagnostics: msg}}})
}

func (h *Handler) adminPurge(c *gin.Context) {
	req, res, ok := h.adminAuthorize(c, opPurgeCache)
	if !ok {
		return
	}
	src := c.Query("source")
	if src == "" {
		h.finish(c, req, res, errorf(http.StatusBadRequest, "required", "source=<source id> is required"), 0, nil)
		return
	}
	n, err := h.opts.Federation.PurgeSource(c.Request.Context(), src)
	if err != nil {
		h.finish(c, req, res, adminError(err), 0, nil)
		return
	}
	h.finish(c, req, res, nil, http.StatusOK, info(strconv.Itoa(n)+" cache entries of source "+src+" removed"))
}

func (h *Handler) adminForgetPatient(c *gin.Context) {
	req, res, ok := h.adminAuthorize(c, opForgetPatient)
	if !ok {
		return
	}
	pid := c.Query("patient")
	if pid == "" {
		h.finish(c, req, res, errorf(http.StatusBadRequest, "required", "patient=<gateway Patient id> is required"), 0, nil)
		return
	}
	if e := checkID(pid); e != nil {
		h.finish(c, req, res, e, 0, nil)
		return
	}
	res.Patient = "Patient/" + pid
	n, err := h.opts.Federation.ForgetPatient(c.Request.Context(), pid)
	if err != nil {
		h.finish(c, req, res, adminError(err), 0, nil)
		return
	}
	h.finish(c, req, res, nil, http.StatusOK, info(strconv.Itoa(n)+" cache entries about the patient removed; the next request reads the patient and their consent afresh"))
}

func (h *Handler) adminExplain(c *gin.Context) {
	req, res, ok := h.adminAuthorize(c, opExplainPolicy)
	if !ok {
		return
	}
	if h.opts.Policy == nil {
		h.finish(c, req, res, errorf(http.StatusNotFound, "not-supported", "policy explanation is not enabled"), 0, nil)
		return
	}
	body, err := io.ReadAll(c.Request.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.finish(c, req, res, errorf(http.StatusRequestEntityTooLarge, "too-long", "request body too large"), 0, nil)
			return
		}
		h.finish(c, req, res, errorf(http.StatusBadRequest, "invalid", "the request body could not be read"), 0, nil)
		return
	}
	in, err := authz.ParseInput(body)
	if err != nil {
		h.finish(c, req, res, &Error{Status: http.StatusBadRequest, Code: "invalid", Message: "the body is not a policy input (see policies/README.md)", Diagnostics: err.Error()}, 0, nil)
		return
	}
	ex, err := h.opts.Policy.Explain(c.Request.Context(), in)
	if err != nil {
		h.finish(c, req, res, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "no policy is loaded", Err: err}, 0, nil)
		return
	}
	h.finishJSON(c, req, res, mustJSON(ex))
}

func (h *Handler) adminPolicyStatus(c *gin.Context) {
	req, res, ok := h.adminAuthorize(c, opExplainPolicy)
	if !ok {
		return
	}
	if h.opts.Policy == nil {
		h.finish(c, req, res, errorf(http.StatusNotFound, "not-supported", "policy status is not enabled"), 0, nil)
		return
	}
	h.finishJSON(c, req, res, mustJSON(h.opts.Policy.Status()))
}

// finishJSON is finish for answers that are plain JSON rather than FHIR.
func (h *Handler) finishJSON(c *gin.Context, req federate.Request, res *federate.Result, body []byte) {
	entry := h.auditEntry(c, req, res, http.StatusOK)
	if _, err := h.opts.Auditor.Record(c.Request.Context(), entry); err != nil {
		h.fail(c, &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "the audit log is unavailable", Err: err})
		return
	}
	c.Header("Cache-Control", "no-store")
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

func adminError(err error) error {
	switch {
	case errors.Is(err, federate.ErrNoCache):
		return errorf(http.StatusConflict, "not-supported", "no cache is in use")
	case errors.Is(err, federate.ErrNotFound):
		return errorf(http.StatusNotFound, "not-found", "no such source or patient")
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "transient", Message: "the cache could not be purged", Err: err}
}
