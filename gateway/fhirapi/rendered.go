package fhirapi

import (
	"crypto/sha256"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/cache"
)

// DefaultRenderedBytes is Options.RenderedBytes' zero value.
const DefaultRenderedBytes = 32 << 20

// renderedTTL bounds how long a rendering is kept after it was made.
const renderedTTL = 5 * time.Minute

// rendered keeps the FHIR JSON of released resources, so that a resource
// released again exactly as before (the same version from its source, the
// same obligations carried out on it) is not marshalled again: jsonformat
// is a large part of a cached read. The key is the SHA-256 of the
// released resource's deterministic protobuf encoding, which is cheap next
// to jsonformat and changes with any change the source or the obligations
// (redaction, labels, _elements) make: the same key is the same JSON by
// construction, and no identifier is in it. Entries are bounded in bytes
// (and so in number) and live renderedTTL at most.
type rendered = cache.Bytes

func newRendered(maxBytes int64) *rendered {
	if maxBytes < 0 {
		return nil
	}
	if maxBytes == 0 {
		maxBytes = DefaultRenderedBytes
	}
	c, err := cache.NewBytes(maxBytes, renderedTTL)
	if err != nil {
		return nil
	}
	return c
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// marshal returns the FHIR JSON of a released resource, from the cache
// when it was rendered before. The bytes are shared: callers only copy
// them out.
func (h *Handler) marshal(m proto.Message) ([]byte, error) {
	h.routeAttachments(m)
	if h.rendered == nil {
		return r4.Marshal(m)
	}
	bin, err := deterministic.Marshal(m)
	if err != nil {
		return r4.Marshal(m)
	}
	key := sha256.Sum256(bin)
	if b, ok := h.rendered.Get(key); ok {
		return b, nil
	}
	b, err := r4.Marshal(m)
	if err != nil {
		return nil, err
	}
	h.rendered.Set(key, b)
	return b, nil
}
