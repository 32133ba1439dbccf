package federate

import (
	"errors"

	"github.com/migrant-health/mhg/gateway/source"
)

// Warning codes of a search that stopped before the source's last page.
// Both mean the results are incomplete, never that the source failed.
const (
	// WarnTruncated: the source had more pages than its page bound.
	WarnTruncated = "truncated"
	// WarnNextLink: a page's next link could not be followed (it leaves
	// the source's server).
	WarnNextLink = "next-link"
)

// partialStop is why, and after how many pages, a source's search stopped
// early; nil when it read every page.
type partialStop struct {
	pages int
	code  string
}

// partialOf separates a search that stopped early, whose resources are
// kept, from one that failed. The error it returns is nil for the first.
func partialOf(err error) (*partialStop, error) {
	if pe, ok := source.AsPartial(err); ok {
		code := WarnTruncated
		if errors.Is(pe, source.ErrNextLink) {
			code = WarnNextLink
		}
		return &partialStop{pages: pe.Pages, code: code}, nil
	}
	if errors.Is(err, source.ErrTruncated) {
		// A source that says it stopped at its bound but not after how
		// many pages.
		return &partialStop{code: WarnTruncated}, nil
	}
	return nil, err
}

// mark records the stop on the set the cache holds.
func (p *partialStop) mark(set *mappedSet) {
	if p == nil {
		return
	}
	set.truncated, set.pages, set.stop = true, p.pages, p.code
}

// warning is the warning a set that stopped early gives. A set cached
// before the reason was recorded was stopped by the page bound.
func (set mappedSet) warning(src Source) Warning {
	code := set.stop
	if code == "" {
		code = WarnTruncated
	}
	return Warning{Source: src.ID(), Code: code, Pages: set.pages}
}
