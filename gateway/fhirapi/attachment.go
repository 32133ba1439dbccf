package fhirapi

import (
	"errors"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance"
	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/federate"
)

const (
	opAttachment = "attachment"
	// opAttachmentDefinition is the canonical of $attachment.
	opAttachmentDefinition = conformance.Canonical + "/OperationDefinition/attachment"
	// defaultMaxAttachmentBytes is Options.MaxAttachmentBytes's zero value.
	defaultMaxAttachmentBytes = 10 << 20
)

// attachmentOperations serve GET [base]/DocumentReference/{id}/$attachment?content=N
// and GET [base]/DiagnosticReport/{id}/$attachment?presentedForm=N: the
// bytes of one attachment, which released resources point to instead of
// carrying them inline or naming the national server.
func attachmentOperations() []Operation {
	handle := func(h *Handler, c *gin.Context, typ, id string) { h.attachment(c, typ, id) }
	var ops []Operation
	for _, typ := range []string{"DocumentReference", "DiagnosticReport"} {
		ops = append(ops, Operation{Name: opAttachment, Level: "instance", ResourceType: typ,
			Definition: opAttachmentDefinition, Methods: []string{http.MethodGet}, Handle: handle})
	}
	return ops
}

// attachmentRoute tells whether r asks for an attachment, whose answer is
// not FHIR JSON (negotiate lets any Accept through).
func attachmentRoute(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/$"+opAttachment)
}

// attachment reads the resource as a read does (query and release
// decisions, one AuditEvent naming it), then sends the attachment's bytes.
// Errors are OperationOutcomes: what a read refuses (403, 404), past the
// size bound 413, bytes the source cannot give (a url on another server,
// a failed fetch) 502.
func (h *Handler) attachment(c *gin.Context, typ, id string) {
	param := federate.AttachmentParam(typ)
	q := c.Request.URL.Query()
	vals := q[param]
	index, err := strconv.Atoi(strings.TrimSpace(firstOf(vals)))
	if len(q) != 1 || len(vals) != 1 || err != nil || index < 0 {
		h.fail(c, errorf(http.StatusBadRequest, "invalid", "$attachment takes exactly one parameter, %s, the attachment's position (0, 1, ...)", param))
		return
	}
	req := h.request(c, interactionOp, typ, opAttachment)
	res, att, err := h.opts.Federation.Attachment(c.Request.Context(), req, typ, id, index, h.opts.MaxAttachmentBytes)
	amend := func(e *audit.Entry) { e.Resource = typ + "/" + id }
	if err != nil {
		h.finishWith(c, req, res, err, 0, amend, nil)
		return
	}
	h.finishWith(c, req, res, nil, http.StatusOK, amend, func() {
		c.Header("Cache-Control", "no-store")
		// The bytes are the source's: never rendered as the gateway's
		// own page.
		c.Header("X-Content-Type-Options", "nosniff")
		c.Header("Content-Security-Policy", "sandbox")
		c.Header("Content-Disposition", "attachment")
		c.Data(http.StatusOK, attachmentType(att.ContentType), att.Data)
	})
}

func firstOf(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// attachmentType is the Content-Type of an attachment: its contentType
// when it is a media type, application/octet-stream otherwise.
func attachmentType(ct string) string {
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "application/octet-stream"
	}
	return mime.FormatMediaType(mt, params)
}

// attachmentError maps the $attachment route's own errors.
func attachmentError(err error) *Error {
	switch {
	case errors.Is(err, federate.ErrAttachmentTooLarge):
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "too-long",
			Message: "the attachment is larger than this gateway serves (server.max_attachment_bytes)", Err: err}
	case errors.Is(err, federate.ErrAttachmentUnreachable):
		return &Error{Status: http.StatusBadGateway, Code: "transient",
			Message: "the attachment's content is not available from its source", Err: err}
	}
	return nil
}

// routeAttachments completes the attachment urls of a released resource
// (federate.RouteAttachments).
func (h *Handler) routeAttachments(m proto.Message) { federate.RouteAttachments(m, h.opts.BaseURL) }
