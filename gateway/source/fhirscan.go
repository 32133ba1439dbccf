package source

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

// ScanPageSize is the _count a Scan asks for when its parameters name
// none.
const ScanPageSize = 200

// Scan does what Search does, but hands the resources to fn a page at a
// time as they come instead of gathering them, so that a caller reading a
// whole population (statistics) holds one page at most. Each page is its
// own call (deadline, retries, breaker) within ctx, and there is no page
// bound: ctx's deadline ends a scan. Without a _count parameter, Scan asks
// for ScanPageSize per page. An error from fn stops the scan and is
// returned as it is. A page that fails, or a next link that cannot be
// followed (ErrNextLink), ends the scan with an error: a scan is either
// complete or failed, never silently partial. Entries that are not valid
// R4 are left out, and the scan, having handed over the rest, ends with a
// *DroppedError.
func (s *FHIR) Scan(ctx context.Context, resourceType string, params url.Values, fn func(Resource) error) error {
	if !resourceTypePattern.MatchString(resourceType) {
		return fmt.Errorf("source %s: search: invalid resource type: %w", s.id, ErrRejected)
	}
	q := url.Values{}
	for k, v := range params {
		q[k] = v
	}
	if q.Get("_count") == "" {
		q.Set("_count", fmt.Sprint(ScanPageSize))
	}
	u := s.base.JoinPath(resourceType)
	u.RawQuery = q.Encode()
	// Pages seen, by a hash of their URL: a server that links back to a
	// page it served would page forever. Eight bytes a page.
	seen := map[uint64]bool{urlHash(u): true}
	var dropped []error
	for page := 1; ; page++ {
		var res []Resource
		var next string
		err := s.call(ctx, "search", resourceType, func(ctx context.Context) error {
			body, err := s.get(ctx, u, "search", resourceType)
			if err != nil {
				return err
			}
			var bad []error
			res, next, bad, err = parseSearchPage(body, resourceType)
			if err != nil {
				return fmt.Errorf("page %d: %w", page, err)
			}
			for _, b := range bad {
				dropped = append(dropped, fmt.Errorf("page %d: %w", page, b))
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("source %s: search %s: %w", s.id, resourceType, err)
		}
		for _, r := range res {
			if err := fn(r); err != nil {
				return err
			}
		}
		if next == "" {
			break
		}
		nu, err := nextPage(u, s.base, next)
		if err != nil {
			return fmt.Errorf("source %s: search %s: %w", s.id, resourceType, &PartialError{Pages: page, Cause: ErrNextLink})
		}
		h := urlHash(nu)
		if seen[h] {
			break
		}
		seen[h] = true
		u = nu
	}
	if len(dropped) > 0 {
		s.log.Warn("resources that are not valid R4 left out of a search", "type", resourceType, "count", len(dropped), "first", dropped[0].Error())
		return fmt.Errorf("source %s: search %s: %w", s.id, resourceType, &DroppedError{Invalid: dropped})
	}
	return nil
}

func urlHash(u *url.URL) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(u.String()))
	return h.Sum64()
}

// capabilitiesTTL is how long the search parameters read from a source's
// CapabilityStatement are trusted before they are read again.
const capabilitiesTTL = 10 * time.Minute

// capabilities caches what a source's CapabilityStatement says it can
// search on. The zero value is empty.
type capabilities struct {
	mu     sync.Mutex
	at     time.Time
	params map[string][]string
}

// SearchParams returns the search parameters the source's
// CapabilityStatement (GET [base]/metadata, read at most every ten
// minutes) declares for resourceType, sorted; nil when the source cannot
// be asked or declares none, so that a caller then filters itself rather
// than send a parameter the source may not honour.
func (s *FHIR) SearchParams(ctx context.Context, resourceType string) []string {
	c := &s.caps
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.params == nil || s.now().Sub(c.at) > capabilitiesTTL {
		var params map[string][]string
		err := s.call(ctx, "check", "CapabilityStatement", func(ctx context.Context) error {
			body, err := s.get(ctx, s.base.JoinPath("metadata"), "check", "CapabilityStatement")
			if err != nil {
				return err
			}
			if err := checkCapabilities(body); err != nil {
				return err
			}
			params, err = searchParams(body)
			return err
		})
		if err != nil {
			s.log.Info("search parameters not read from the CapabilityStatement", "error.type", telemetry.ErrorType(err))
			return nil
		}
		c.params, c.at = params, s.now()
	}
	return c.params[resourceType]
}

// searchParams reads, per resource type, the search parameters of the
// server's rest entries.
func searchParams(body []byte) (map[string][]string, error) {
	var cs struct {
		Rest []struct {
			Mode     string `json:"mode"`
			Resource []struct {
				Type        string `json:"type"`
				SearchParam []struct {
					Name string `json:"name"`
				} `json:"searchParam"`
			} `json:"resource"`
		} `json:"rest"`
	}
	if err := json.Unmarshal(body, &cs); err != nil {
		return nil, fmt.Errorf("metadata is not a CapabilityStatement: %w", ErrInvalidResponse)
	}
	out := map[string][]string{}
	for _, r := range cs.Rest {
		if r.Mode != "" && r.Mode != "server" {
			continue
		}
		for _, res := range r.Resource {
			for _, p := range res.SearchParam {
				if p.Name != "" && !slices.Contains(out[res.Type], p.Name) {
					out[res.Type] = append(out[res.Type], p.Name)
				}
			}
			slices.Sort(out[res.Type])
		}
	}
	return out, nil
}
