package fhirapi

import (
	"crypto/sha256"
	"time"

	"github.com/maypok86/otter/v2"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
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
type rendered struct {
	c *otter.Cache[[sha256.Size]byte, []byte]
}

// renderedOverhead is what an entry costs beyond its JSON: its key and
// the cache's bookkeeping, roughly.
const renderedOverhead = 128

func newRendered(maxBytes int64) *rendered {
	if maxBytes < 0 {
		return nil
	}
	if maxBytes == 0 {
		maxBytes = DefaultRenderedBytes
	}
	c, err := otter.New(&otter.Options[[sha256.Size]byte, []byte]{
		MaximumWeight: uint64(maxBytes),
		Weigher: func(_ [sha256.Size]byte, b []byte) uint32 {
			return uint32(min(len(b)+renderedOverhead, 1<<31))
		},
		ExpiryCalculator: otter.ExpiryWriting[[sha256.Size]byte, []byte](renderedTTL),
	})
	if err != nil {
		return nil
	}
	return &rendered{c: c}
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
	if b, ok := h.rendered.c.GetIfPresent(key); ok {
		return b, nil
	}
	b, err := r4.Marshal(m)
	if err != nil {
		return nil, err
	}
	h.rendered.c.Set(key, b)
	return b, nil
}
