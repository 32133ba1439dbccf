package authz

import (
	"encoding/json"
	"slices"
	"sort"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMemoEntries is Options.MemoEntries' zero value.
const DefaultMemoEntries = 4096

// MaxMemoTTL bounds how long a memoized decision is reused, whatever the
// validity boundaries say: a policy that reads the clock for anything
// else than agreement and consent periods is wrong for at most a minute.
const MaxMemoTTL = time.Minute

// memo reuses decisions of one policy revision for inputs identical to
// the byte. It belongs to a compiled revision, so a new revision starts
// with an empty memo: the revision is part of the key by construction.
// The key is the policy input exactly as Rego sees it (its JSON form),
// which holds the requester, the action, the resource facts and the
// patient's consent provisions: a consent change is another key. An entry
// expires at the first validity boundary after it was decided (an
// agreement entering or leaving force, a consent provision starting or
// ending), and after MaxMemoTTL at the latest.
type memo struct {
	entries *otter.Cache[string, memoEntry]
	// bounds are the agreements' validity boundaries (Unix ns), sorted.
	bounds []int64
}

type memoEntry struct {
	result  any       // the policy's result, read afresh into each Decision
	decided time.Time // a clock set back before it does not reuse it
	expires time.Time
}

// newMemo builds a memo of at most size entries for an agreement set;
// size <= 0 means no memo.
func newMemo(size int, agreements []Agreement) *memo {
	if size <= 0 {
		return nil
	}
	// otter, as the in-process cache: bounded, with each entry dropped
	// at its own expiry (on the real clock; get also checks the engine's).
	entries, err := otter.New(&otter.Options[string, memoEntry]{
		MaximumSize: size,
		ExpiryCalculator: otter.ExpiryWritingFunc(func(e otter.Entry[string, memoEntry]) time.Duration {
			return e.Value.expires.Sub(e.Value.decided)
		}),
	})
	if err != nil {
		return nil
	}
	m := &memo{entries: entries}
	for _, a := range agreements {
		from, err1 := time.Parse(time.DateOnly, a.ValidFrom)
		until, err2 := time.Parse(time.DateOnly, a.ValidUntil)
		if err1 == nil && err2 == nil {
			// As indexAgreements: valid until the first instant after the
			// last valid day.
			m.bounds = append(m.bounds, from.UnixNano(), until.AddDate(0, 0, 1).UnixNano())
		}
	}
	slices.Sort(m.bounds)
	return m
}

// key is the memo key of a normalised input: its JSON form, the document
// Rego evaluates. ok is false when it cannot be formed (never memoized).
func memoKey(in Input) (string, bool) {
	b, err := json.Marshal(in)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// get returns the memoized result for key, if decided and still valid at
// now.
func (m *memo) get(key string, now time.Time) (any, bool) {
	if m == nil {
		return nil, false
	}
	e, ok := m.entries.GetIfPresent(key)
	if !ok {
		return nil, false
	}
	if now.Before(e.decided) || !now.Before(e.expires) {
		m.entries.Invalidate(key)
		return nil, false
	}
	return e.result, true
}

// put memoizes result for key, decided at now about in.
func (m *memo) put(key string, in Input, now time.Time, result any) {
	if m == nil {
		return
	}
	m.entries.Set(key, memoEntry{result: result, decided: now, expires: m.expiry(in, now)})
}

// expiry is the first validity boundary after now that can change the
// decision about in (normalized), at most MaxMemoTTL ahead.
func (m *memo) expiry(in Input, now time.Time) time.Time {
	next := now.Add(MaxMemoTTL)
	ns := now.UnixNano()
	if i := sort.Search(len(m.bounds), func(i int) bool { return m.bounds[i] > ns }); i < len(m.bounds) {
		if t := time.Unix(0, m.bounds[i]); t.Before(next) {
			next = t
		}
	}
	for _, p := range in.Consent {
		// The bounds as the engine read them for the policy (in is
		// normalized): a bound that cannot be read gives no instant, and
		// the policy's answer about it does not change with time.
		for _, bound := range []*int64{p.StartNS, p.EndNS} {
			if bound == nil {
				continue
			}
			if b := time.Unix(0, *bound); b.After(now) && b.Before(next) {
				next = b
			}
		}
	}
	return next
}
