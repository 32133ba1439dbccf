package federate

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"hash"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/gateway/cache"
)

// DefaultDocumentBytes is LinkerOptions.DocumentBytes' zero value.
const DefaultDocumentBytes = 16 << 20

// documentTTL bounds how long a rendered summary is kept after it was
// rendered, and so how old the timestamp of a document served again can
// be.
const documentTTL = 5 * time.Minute

// documents keeps rendered $summary documents, so that a summary asked
// again with exactly the same inputs is not marshalled and assembled
// again. The key (documentKey) is a SHA-256 over everything that shapes
// the document: every released resource (the SHA-256 of its deterministic
// protobuf encoding, after the policy's obligations, so any change by the
// source or the obligations changes it) with its type, id, loss report and
// class, the sources and how each record was linked, the warnings, every
// policy decision taken for the request (revision, verdict, rule ids,
// obligations, agreements), the requester's country, role, purpose of use
// and break-the-glass flag, and the language, base URL and profiles asked
// for. The identification, consent and release work is done on every
// request, and so is its audit record: a document is served again only
// when that work released exactly what it released before, and never to
// a request that asked for fresh data (Cache-Control: no-cache). No
// identifier is in a key. Entries are bounded in bytes and live
// documentTTL at most.
type documents = cache.Bytes

// newDocuments returns a document cache of at most maxBytes (zero:
// DefaultDocumentBytes); nil when maxBytes is negative.
func newDocuments(maxBytes int64) *documents {
	if maxBytes < 0 {
		return nil
	}
	if maxBytes == 0 {
		maxBytes = DefaultDocumentBytes
	}
	c, err := cache.NewBytes(maxBytes, documentTTL)
	if err != nil {
		return nil
	}
	return c
}

var deterministic = proto.MarshalOptions{Deterministic: true}

// keyWriter writes length-prefixed fields into a hash, so that no two
// different sequences of fields write the same bytes.
type keyWriter struct {
	h   hash.Hash
	buf [binary.MaxVarintLen64]byte
	bin []byte // reused for the resources' protobuf encodings
}

func (w *keyWriter) int(n int64) {
	k := binary.PutVarint(w.buf[:], n)
	w.h.Write(w.buf[:k])
}

func (w *keyWriter) bytes(b []byte) {
	w.int(int64(len(b)))
	w.h.Write(b)
}

func (w *keyWriter) str(s string) {
	w.int(int64(len(s)))
	w.h.Write([]byte(s))
}

func (w *keyWriter) strs(ss []string) {
	w.int(int64(len(ss)))
	for _, s := range ss {
		w.str(s)
	}
}

func (w *keyWriter) bool(b bool) {
	if b {
		w.int(1)
	} else {
		w.int(0)
	}
}

// json writes v's JSON (deterministic for the structs and slices used
// here); a value that cannot be marshalled makes the key unusable.
func (w *keyWriter) json(v any) bool {
	b, err := json.Marshal(v)
	if err != nil {
		return false
	}
	w.bytes(b)
	return true
}

// documentKey is the cache key of the summary that in-progress request
// req would render from lk and res (see documents). ok is false when a key
// could not be made; the document is then rendered and not kept.
func (l *Linker) documentKey(req Request, res *Result, lk *linkage, sr SummaryRequest) (key [sha256.Size]byte, ok bool) {
	w := &keyWriter{h: sha256.New()}
	w.str("mhg summary document 1")
	w.str(res.Patient)
	rq := req.Requester
	w.strs([]string{rq.Country, rq.Role, rq.PurposeOfUse})
	w.bool(rq.BreakGlass)
	w.str(sr.Language)
	w.str(sr.BaseURL)
	w.strs(sr.Profiles)
	links := lk.ordered()
	w.int(int64(len(links)))
	for _, ln := range links {
		s := l.summarySource(ln.src)
		w.strs([]string{s.ID, s.Country, s.Profile, s.MappingVersion})
		if !w.json(ln.how) {
			return key, false
		}
		if !l.writeEntry(w, ln.patient, sr.BaseURL) {
			return key, false
		}
		w.int(int64(len(ln.entries)))
		for _, e := range ln.entries {
			if !l.writeEntry(w, e, sr.BaseURL) {
				return key, false
			}
		}
	}
	w.int(int64(len(res.Warnings)))
	for _, wn := range res.Warnings {
		country := ""
		if src, ok := l.svc.source(wn.Source); ok {
			country = src.Country()
		}
		w.strs([]string{wn.Source, country, wn.Code})
		w.int(int64(wn.Pages))
	}
	w.int(int64(len(res.Decisions)))
	for _, d := range res.Decisions {
		w.strs([]string{d.Phase, d.Source, d.Class, d.Decision.Revision})
		w.bool(d.Decision.Allow)
		w.strs(d.Decision.Reasons)
		w.strs(d.Decision.Agreements)
		if !w.json(d.Decision.Obligations) {
			return key, false
		}
	}
	w.h.Sum(key[:0])
	return key, true
}

// writeEntry writes one released resource into a key: what the summary
// package is given of it (record), with the resource as the SHA-256 of its
// deterministic protobuf encoding, its attachments routed as record
// routes them. Its class (Record.Sensitive) is a fact of that resource.
func (l *Linker) writeEntry(w *keyWriter, e Entry, base string) bool {
	RouteAttachments(e.Resource, base)
	bin, err := deterministic.MarshalAppend(w.bin[:0], e.Resource)
	if err != nil {
		return false
	}
	w.bin = bin
	sum := sha256.Sum256(bin)
	w.strs([]string{e.Type, e.ID})
	w.bytes(sum[:])
	return w.json(e.Loss)
}
