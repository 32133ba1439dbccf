package search

import (
	"cmp"
	"math"
	"slices"

	"google.golang.org/protobuf/proto"
)

type sortKey struct {
	param Param
	desc  bool
}

// Apply returns the entries whose resource matches the query, in the
// query's sort order (stable: equal keys keep the order they came in).
// With no criteria and no sort it returns entries unchanged.
func Apply[E any](q *Query, entries []E, resource func(E) proto.Message) []E {
	if q.Empty() {
		return entries
	}
	type keyed struct {
		e    E
		keys []int64
	}
	var kept []keyed
	for _, e := range entries {
		m := resource(e)
		if m == nil || !q.Match(m) {
			continue
		}
		k := keyed{e: e}
		for _, s := range q.sortKeys {
			k.keys = append(k.keys, s.key(m))
		}
		kept = append(kept, k)
	}
	slices.SortStableFunc(kept, func(a, b keyed) int {
		for i, s := range q.sortKeys {
			x, y := a.keys[i], b.keys[i]
			// Resources without the element sort last either way.
			switch {
			case x == y:
				continue
			case x == missing:
				return 1
			case y == missing:
				return -1
			case s.desc:
				return cmp.Compare(y, x)
			default:
				return cmp.Compare(x, y)
			}
		}
		return 0
	})
	out := make([]E, len(kept))
	for i, k := range kept {
		out[i] = k.e
	}
	return out
}

// missing is the sort key of a resource without the element.
const missing = math.MinInt64 + 1

// key is what a resource sorts by: ascending by the earliest start of the
// element's ranges, descending by the latest end (FHIR's rule for sorting
// on ranges). An open end sorts as the far end.
func (s sortKey) key(m proto.Message) int64 {
	k, found := int64(0), false
	for _, l := range collect(m.ProtoReflect(), s.param.Paths) {
		r, ok := l.dateRange()
		if !ok {
			continue
		}
		v := r.lo
		if s.desc {
			v = r.hi
		}
		if v == math.MinInt64 {
			v = math.MinInt64 + 2
		}
		switch {
		case !found:
			k, found = v, true
		case s.desc && v > k, !s.desc && v < k:
			k = v
		}
	}
	if !found {
		return missing
	}
	return k
}
