package federate

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/mappings"

	dtpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/datatypes_go_proto"
	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	dpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/diagnostic_report_go_proto"
	drpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/document_reference_go_proto"
)

// Errors of Attachment callers branch on.
var (
	// ErrAttachmentTooLarge: the attachment is larger than the bound.
	ErrAttachmentTooLarge = errors.New("attachment exceeds the size bound")
	// ErrAttachmentUnreachable: the attachment's bytes cannot be had from
	// the source: its url names another server, the source cannot fetch
	// urls, or the fetch failed.
	ErrAttachmentUnreachable = errors.New("attachment not available from the source")
)

// attachmentFetcher is a source that fetches attachment urls under its own
// base URL (source.FHIR).
type attachmentFetcher interface {
	FetchAttachment(ctx context.Context, rawURL string, limit int64) ([]byte, string, error)
}

// Attachment is the content of one attachment.
type Attachment struct {
	// ContentType is the attachment's contentType, or what the source
	// answered when the attachment has none.
	ContentType string
	// Data are the bytes.
	Data []byte
}

// attachmentParam names, per resource type, the query parameter of the
// $attachment route and the element that holds the attachments.
var attachmentParam = map[string]string{"DocumentReference": "content", "DiagnosticReport": "presentedForm"}

// AttachmentParam is the query parameter that selects an attachment of a
// resource type on the $attachment route; "" for a type without one.
func AttachmentParam(resourceType string) string { return attachmentParam[resourceType] }

// Attachment returns attachment index of a DocumentReference
// (content[index].attachment) or DiagnosticReport (presentedForm[index]).
// The resource is read as Read reads it (query and release decisions,
// recorded in the Result): what Read refuses, Attachment refuses with the
// same error, and an attachment the released resource does not point to
// the gateway's route for is ErrNotFound. The bytes then come from the
// upstream resource: its inline data, or its url fetched by the source
// itself when the url lies under the source's base URL. More than limit
// bytes wrap ErrAttachmentTooLarge.
func (s *Service) Attachment(ctx context.Context, req Request, resourceType, id string, index int, limit int64) (*Result, *Attachment, error) {
	param := attachmentParam[resourceType]
	if param == "" || index < 0 {
		return &Result{}, nil, ErrNotFound
	}
	res, err := s.Read(ctx, req, resourceType, id)
	if err != nil {
		return res, nil, err
	}
	js, err := r4.Marshal(r4.Resource(res.Entries[0].Resource))
	if err != nil {
		return res, nil, fmt.Errorf("render %s: %w", resourceType, err)
	}
	var rel map[string]any
	if err := json.Unmarshal(js, &rel); err != nil {
		return res, nil, fmt.Errorf("render %s: %w", resourceType, err)
	}
	released := upstreamAttachments(rel, resourceType)
	route := mappings.AttachmentRoute + param + "=" + strconv.Itoa(index)
	if index >= len(released) || stringField(released[index], "url") != route {
		// The policy removed it, or it never had content.
		return res, nil, ErrNotFound
	}
	src, upstream, err := s.locate(resourceType, id)
	if err != nil {
		return res, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, s.opts.SourceTimeout)
	defer cancel()
	raw, err := src.Read(ctx, resourceType, upstream)
	if err != nil {
		if errors.Is(err, source.ErrNotFound) {
			return res, nil, ErrNotFound
		}
		return res, nil, sourceError(err)
	}
	var up map[string]any
	if err := json.Unmarshal(raw.JSON, &up); err != nil {
		return res, nil, fmt.Errorf("%w: upstream resource: %v", ErrAttachmentUnreachable, err)
	}
	list := upstreamAttachments(up, resourceType)
	if index >= len(list) {
		return res, nil, ErrNotFound
	}
	att := list[index]
	out := &Attachment{ContentType: stringField(att, "contentType")}
	if data := stringField(att, "data"); data != "" {
		if int64(base64.StdEncoding.DecodedLen(len(data))) > limit+2 {
			return res, nil, ErrAttachmentTooLarge
		}
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return res, nil, fmt.Errorf("%w: inline data is not base64", ErrAttachmentUnreachable)
		}
		if int64(len(b)) > limit {
			return res, nil, ErrAttachmentTooLarge
		}
		out.Data = b
		return res, out, nil
	}
	u := stringField(att, "url")
	if u == "" {
		return res, nil, ErrNotFound
	}
	f, ok := src.(attachmentFetcher)
	if !ok {
		return res, nil, fmt.Errorf("%w: the source cannot fetch attachment urls", ErrAttachmentUnreachable)
	}
	b, ctype, err := f.FetchAttachment(ctx, u, limit)
	switch {
	case errors.Is(err, source.ErrTooLarge):
		return res, nil, ErrAttachmentTooLarge
	case errors.Is(err, source.ErrForeignURL):
		return res, nil, fmt.Errorf("%w: %w", ErrAttachmentUnreachable, err)
	case err != nil:
		return res, nil, fmt.Errorf("%w: %w", ErrAttachmentUnreachable, sourceError(err))
	}
	if out.ContentType == "" {
		out.ContentType = ctype
	}
	out.Data = b
	return res, out, nil
}

// upstreamAttachments lists a resource's attachments (JSON, upstream or
// released) in the order the route's index counts them: presentedForm, or
// content by position (nil where a content has no attachment).
func upstreamAttachments(res map[string]any, resourceType string) []map[string]any {
	var out []map[string]any
	switch resourceType {
	case "DiagnosticReport":
		forms, _ := res["presentedForm"].([]any)
		for _, f := range forms {
			a, _ := f.(map[string]any)
			out = append(out, a)
		}
	case "DocumentReference":
		content, _ := res["content"].([]any)
		for _, c := range content {
			co, _ := c.(map[string]any)
			a, _ := co["attachment"].(map[string]any)
			out = append(out, a)
		}
	}
	return out
}

func stringField(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// RouteAttachments completes the attachment urls a mapping wrote as
// mappings.AttachmentRoute in a released resource (or ContainedResource)
// to base/{type}/{id}/$attachment?...: a client follows them to the
// gateway, never to a national server. It changes m in place and is
// idempotent.
func RouteAttachments(m proto.Message, base string) {
	if cr, ok := m.(*rpb.ContainedResource); ok {
		m = r4.Resource(cr)
	}
	base = strings.TrimRight(base, "/")
	switch r := m.(type) {
	case *drpb.DocumentReference:
		prefix := base + "/DocumentReference/" + r4.ID(m) + "/"
		for _, c := range r.GetContent() {
			routeURL(c.GetAttachment().GetUrl(), prefix)
		}
	case *dpb.DiagnosticReport:
		prefix := base + "/DiagnosticReport/" + r4.ID(m) + "/"
		for _, a := range r.GetPresentedForm() {
			routeURL(a.GetUrl(), prefix)
		}
	}
}

func routeURL(u *dtpb.Url, prefix string) {
	if u != nil && strings.HasPrefix(u.GetValue(), mappings.AttachmentRoute) {
		u.Value = prefix + u.GetValue()
	}
}
