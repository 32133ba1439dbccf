package console

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/migrant-health/mhg/gateway/authz"
)

// Decider takes decisions at a given time: a draft compiled with
// authz.Prepare.
type Decider interface {
	Decide(ctx context.Context, in authz.Input, at time.Time) (authz.Decision, error)
}

var _ Decider = (*authz.Policy)(nil)

// Flip is one recorded decision the draft decides the other way.
type Flip struct {
	// DecisionID, Time and Revision are the recorded decision's.
	DecisionID string
	Time       time.Time
	Revision   string
	// Country, Role and Purpose are the requester's; Phase, Resource the
	// decision's.
	Country, Role, Purpose, Phase, Resource string
	// Was and Now are the recorded and the draft's reasons.
	Was, Now []string
	// ToDeny is set for allow->deny, clear for deny->allow.
	ToDeny bool
}

// Group counts flips that share a key (a rule, a country, ...).
type Group struct {
	Key             string
	ToDeny, ToAllow int
}

// Impact is what replaying recorded decisions against a draft found.
type Impact struct {
	// From and To are the period replayed; Replayed counts the decisions,
	// Errors those the draft could not decide (they deny).
	From, To time.Time
	Replayed int
	Errors   int
	// ToDeny and ToAllow count the flips.
	ToDeny, ToAllow int
	// ByRule groups flips by the rule that makes the difference (the
	// draft's deny reasons for allow->deny, the recorded deny reasons for
	// deny->allow); ByCountry, ByRole and ByPurpose by the requester.
	ByRule, ByCountry, ByRole, ByPurpose []Group
	// Examples are the first flips found, at most MaxExamples.
	Examples []Flip
}

// MaxExamples bounds Impact.Examples.
const MaxExamples = 50

// Replay replays the decisions of log between from and to against draft,
// each as at the time it was taken, and compares verdicts with what was
// recorded.
func Replay(ctx context.Context, log DecisionLog, draft Decider, from, to time.Time) (Impact, error) {
	im := Impact{From: from, To: to}
	rule, country, role, purpose := map[string]*Group{}, map[string]*Group{}, map[string]*Group{}, map[string]*Group{}
	count := func(m map[string]*Group, key string, toDeny bool) {
		g := m[key]
		if g == nil {
			g = &Group{Key: key}
			m[key] = g
		}
		if toDeny {
			g.ToDeny++
		} else {
			g.ToAllow++
		}
	}
	err := log.Range(ctx, from, to, func(e authz.LogEntry) error {
		im.Replayed++
		d, err := draft.Decide(ctx, e.Input, e.Timestamp)
		if err != nil {
			im.Errors++
		}
		was := e.Allowed()
		if d.Allow == was {
			return nil
		}
		f := Flip{DecisionID: e.DecisionID, Time: e.Timestamp, Revision: e.Revision(), Country: e.Input.Requester.Country,
			Role: e.Input.Requester.Role, Purpose: e.Input.Requester.PurposeOfUse, Phase: e.Input.Phase,
			Resource: e.Input.Action.ResourceType, Was: e.Reasons(), Now: d.Reasons, ToDeny: was}
		if e.Input.Resource != nil {
			f.Resource = e.Input.Resource.Type
		}
		why := f.Now
		if !f.ToDeny {
			why = f.Was
			im.ToAllow++
		} else {
			im.ToDeny++
		}
		for _, r := range why {
			count(rule, r, f.ToDeny)
		}
		count(country, orNone(f.Country), f.ToDeny)
		count(role, orNone(f.Role), f.ToDeny)
		count(purpose, orNone(f.Purpose), f.ToDeny)
		if len(im.Examples) < MaxExamples {
			im.Examples = append(im.Examples, f)
		}
		return nil
	})
	if err != nil {
		return im, fmt.Errorf("impact: %w", err)
	}
	im.ByRule, im.ByCountry, im.ByRole, im.ByPurpose = sorted(rule), sorted(country), sorted(role), sorted(purpose)
	return im, nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// sorted lists groups, largest first.
func sorted(m map[string]*Group) []Group {
	out := make([]Group, 0, len(m))
	for _, g := range m {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b Group) int {
		if c := cmp.Compare(b.ToDeny+b.ToAllow, a.ToDeny+a.ToAllow); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	return out
}
