package federate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/migrant-health/mhg/gateway/telemetry"
	"net/url"
	"sort"
	"strings"

	rpb "github.com/google/fhir/go/proto/google/fhir/proto/r4/core/resources/bundle_and_contained_resource_go_proto"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/migrant-health/mhg/conformance/r4"
	"github.com/migrant-health/mhg/gateway/authz"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/source"
	"github.com/migrant-health/mhg/gateway/summary"
	"github.com/migrant-health/mhg/mappings"
)

// tracer returns the tracer of the current global provider. It is looked
// up per span, not kept in a variable: a tracer taken before the provider
// is installed stays bound to the first one ever installed.
func tracer() trace.Tracer { return otel.Tracer("github.com/migrant-health/mhg/gateway/federate") }

// mapped is one MHP resource as the cache holds it.
type mapped struct {
	res  *rpb.ContainedResource
	loss []mappings.Issue
}

// mappedSet is what one source call produced.
type mappedSet struct {
	items []mapped
	// truncated is set when the source's search stopped before its last
	// page (partial.go): pages says how many were read, stop why
	// (WarnTruncated, WarnNextLink).
	truncated bool
	pages     int
	stop      string
	// dropped is set when the source returned resources that are not
	// valid R4, left out of the set (source.ErrDropped).
	dropped bool
}

// permitted asks the query phase whether src may be contacted.
func (s *Service) permitted(ctx context.Context, req Request, src Source, res *Result) (authz.Decision, error) {
	in := authz.Input{
		Phase:     authz.PhaseQuery,
		Requester: req.Requester,
		Action:    action(req),
		Source:    &authz.Source{ID: src.ID(), Country: src.Country()},
		Consent:   []authz.Provision{},
	}
	if req.MatchTraits != nil {
		in.Match = &authz.Match{Traits: req.MatchTraits}
	}
	d := s.decide(ctx, in)
	res.addDecision(authz.PhaseQuery, src.ID(), "", d)
	return d, nil
}

// decide asks the Decider. A decision that failed is a refusal (fail
// closed) that keeps the reasons and ids the engine gave it
// (engine.error, engine.undefined, engine.no-policy), so that the
// AuditEvent, the decision log and the 403 name the same reason;
// authz.ReasonError when the Decider gave none.
func (s *Service) decide(ctx context.Context, in authz.Input) authz.Decision {
	d, err := s.opts.Decider.Decide(ctx, in)
	if err != nil {
		src := ""
		if in.Source != nil {
			src = in.Source.ID
		}
		s.log.ErrorContext(ctx, "policy decision failed", string(telemetry.AttrPhase), in.Phase,
			string(telemetry.AttrSourceID), src, "error", err)
		d.Allow, d.Obligations = false, nil
		if len(d.Reasons) == 0 {
			d.Reasons = []string{authz.ReasonError}
		}
	}
	return d
}

func action(req Request) authz.Action {
	return authz.Action{Interaction: req.Interaction, ResourceType: req.ResourceType, Operation: req.Operation}
}

// fetchMapped loads resources from src through the cache, maps them into
// the MHP and validates the result.
func (s *Service) fetchMapped(ctx context.Context, req Request, src Source, kind cache.Kind, parts []string, tags []string,
	load func(ctx context.Context) ([]source.Resource, error)) (mappedSet, error) {
	version := s.opts.Mapper.Version(src.Profile())
	loader := func(ctx context.Context) ([]byte, error) {
		ctx, span := tracer().Start(ctx, telemetry.SpanSourceFetch)
		span.SetAttributes(telemetry.AttrSourceID.String(src.ID()), telemetry.AttrResourceType.String(parts[0]))
		raw, err := load(ctx)
		dropped := err != nil && len(raw) > 0 && errors.Is(err, source.ErrDropped)
		partial, err := partialOf(err)
		if dropped && partial == nil {
			// Only invalid resources were left out: the rest is served
			// with an incomplete warning.
			err = nil
		}
		if err != nil {
			span.SetStatus(codes.Error, errorClass(err))
			span.SetAttributes(telemetry.AttrErrorType.String(errorClass(err)))
			span.End()
			if errors.Is(err, source.ErrNotFound) {
				return nil, fmt.Errorf("%w: %w", cache.ErrAbsent, err)
			}
			return nil, err
		}
		span.SetAttributes(telemetry.AttrCount.Int(len(raw)))
		span.End()
		out, err := s.mapAll(ctx, src, raw)
		if err != nil {
			return nil, err
		}
		set := mappedSet{items: out, dropped: dropped}
		partial.mark(&set)
		return encodeSet(set)
	}
	var b []byte
	var err error
	if s.opts.Cache != nil {
		key := cache.Key{Kind: kind, Source: src.ID(), Version: version, Parts: parts, Tags: tags}
		b, err = s.opts.Cache.Fetch(ctx, key, req.NoCache, loader)
	} else {
		b, err = loader(ctx)
	}
	if err != nil {
		if errors.Is(err, cache.ErrAbsent) && !errors.Is(err, source.ErrNotFound) {
			err = fmt.Errorf("%w: %w", source.ErrNotFound, err)
		}
		return mappedSet{}, err
	}
	return decodeSet(b)
}

// mapAll maps and validates every resource; what fails is dropped with a
// loss issue on nothing (it cannot be attributed without leaking) and a log
// line that names only the source and type.
func (s *Service) mapAll(ctx context.Context, src Source, raw []source.Resource) ([]mapped, error) {
	ctx, span := tracer().Start(ctx, telemetry.SpanMappingApply)
	defer span.End()
	span.SetAttributes(telemetry.AttrSourceID.String(src.ID()), telemetry.AttrCount.Int(len(raw)))
	out := make([]mapped, 0, len(raw))
	var idErr error
	opts := mappings.Options{
		SourceID: src.ID(),
		Country:  src.Country(),
		ID: func(typ, id string) string {
			gw, err := s.opts.IDs.Encode(src.ID(), typ, id)
			if err != nil {
				idErr = err
				return "invalid-id"
			}
			return gw
		},
	}
	failed := 0
	for _, r := range raw {
		idErr = nil
		result, err := s.opts.Mapper.Map(src.Profile(), r.JSON, opts)
		if err == nil && idErr != nil {
			err = idErr
		}
		if err != nil {
			failed++
			s.log.WarnContext(ctx, "resource not mapped", string(telemetry.AttrSourceID), src.ID(), string(telemetry.AttrResourceType), r.Type, "error_class", errorClass(err))
			continue
		}
		for i, o := range result.Outputs {
			cr, err := r4.Parse(o.JSON)
			if err != nil {
				failed++
				s.log.WarnContext(ctx, "mapped resource is not valid R4", string(telemetry.AttrSourceID), src.ID(), string(telemetry.AttrResourceType), o.Type)
				continue
			}
			addPseudonym(cr)
			m := mapped{res: cr}
			// The loss report belongs to the main output: resources split
			// off it (class S) are released on their own terms, and the
			// report must not reveal them (ReportableLoss).
			if i == 0 {
				m.loss = summary.ReportableLoss(result.Issues)
			}
			out = append(out, m)
		}
	}
	span.SetAttributes(telemetry.AttrFailed.Int(failed))
	if failed > 0 && len(out) == 0 {
		return nil, fmt.Errorf("%w: none of %d resources could be mapped", source.ErrInvalidResponse, failed)
	}
	return out, nil
}

// errorClass names an error's kind without its text, for logs and spans.
func errorClass(err error) string {
	switch {
	case errors.Is(err, source.ErrNotFound):
		return "not-found"
	case errors.Is(err, source.ErrThrottled):
		return WarnThrottled
	case errors.Is(err, source.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, source.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, source.ErrInvalidResponse):
		return "invalid-response"
	case errors.Is(err, source.ErrRejected):
		return "rejected"
	case errors.Is(err, mappings.ErrNotMappable), errors.Is(err, mappings.ErrUnknownProfile):
		return "mapping"
	case errors.Is(err, ErrIDTooLong):
		return "id-too-long"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "error"
}

// canonicalParams renders search parameters in a stable order for cache
// keys (which hash them).
func canonicalParams(typ string, q url.Values) []string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := []string{typ}
	for _, k := range keys {
		vs := append([]string(nil), q[k]...)
		sort.Strings(vs)
		parts = append(parts, k+"="+strings.Join(vs, ","))
	}
	return parts
}

// The cache value of a set of mapped resources is a small protobuf message
// written by hand: repeated field 1 holds one entry each, itself field 1
// (the ContainedResource, binary) and field 2 (the loss report, JSON);
// field 2, a varint 1, marks a truncated set, field 3 (varint) says how
// many pages were read and field 4 (bytes) why the search stopped; field
// 5, a varint 1, marks a set some resources of which were dropped as not
// valid R4.
func encodeSet(set mappedSet) ([]byte, error) {
	var out []byte
	if set.truncated {
		out = protowire.AppendTag(out, 2, protowire.VarintType)
		out = protowire.AppendVarint(out, 1)
		out = protowire.AppendTag(out, 3, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(max(set.pages, 0)))
		out = protowire.AppendTag(out, 4, protowire.BytesType)
		out = protowire.AppendString(out, set.stop)
	}
	if set.dropped {
		out = protowire.AppendTag(out, 5, protowire.VarintType)
		out = protowire.AppendVarint(out, 1)
	}
	for _, m := range set.items {
		res, err := proto.Marshal(m.res)
		if err != nil {
			return nil, fmt.Errorf("encode cached resource: %w", err)
		}
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendBytes(entry, res)
		if len(m.loss) > 0 {
			loss, err := json.Marshal(m.loss)
			if err != nil {
				return nil, fmt.Errorf("encode loss report: %w", err)
			}
			entry = protowire.AppendTag(entry, 2, protowire.BytesType)
			entry = protowire.AppendBytes(entry, loss)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, entry)
	}
	// An empty set still needs a non-nil value so caches store it.
	if out == nil {
		out = []byte{}
	}
	return out, nil
}

var errCorruptSet = errors.New("corrupt cached set")

func decodeSet(b []byte) (mappedSet, error) {
	var set mappedSet
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return mappedSet{}, errCorruptSet
		}
		b = b[n:]
		if (num == 2 || num == 3 || num == 5) && typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 || v > 1<<20 {
				return mappedSet{}, errCorruptSet
			}
			b = b[n:]
			switch num {
			case 2:
				set.truncated = v == 1
			case 3:
				set.pages = int(v)
			case 5:
				set.dropped = v == 1
			}
			continue
		}
		if num == 4 && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return mappedSet{}, errCorruptSet
			}
			b = b[n:]
			set.stop = string(v)
			continue
		}
		if num != 1 || typ != protowire.BytesType {
			return mappedSet{}, errCorruptSet
		}
		entry, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return mappedSet{}, errCorruptSet
		}
		b = b[n:]
		var m mapped
		for len(entry) > 0 {
			num, typ, n := protowire.ConsumeTag(entry)
			if n < 0 || typ != protowire.BytesType {
				return mappedSet{}, errCorruptSet
			}
			entry = entry[n:]
			v, n := protowire.ConsumeBytes(entry)
			if n < 0 {
				return mappedSet{}, errCorruptSet
			}
			entry = entry[n:]
			switch num {
			case 1:
				m.res = &rpb.ContainedResource{}
				if err := proto.Unmarshal(v, m.res); err != nil {
					return mappedSet{}, fmt.Errorf("%w: %v", errCorruptSet, err)
				}
			case 2:
				if err := json.Unmarshal(v, &m.loss); err != nil {
					return mappedSet{}, fmt.Errorf("%w: %v", errCorruptSet, err)
				}
			}
		}
		if m.res == nil {
			return mappedSet{}, errCorruptSet
		}
		set.items = append(set.items, m)
	}
	return set, nil
}
