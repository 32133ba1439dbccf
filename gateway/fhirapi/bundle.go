package fhirapi

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// bundle is an R4 Bundle assembled from already-rendered resources, so
// that resources are marshalled once by the R4 codec and never reparsed.
type bundle struct {
	ResourceType string        `json:"resourceType"`
	ID           string        `json:"id,omitempty"`
	Meta         *bundleMeta   `json:"meta,omitempty"`
	Type         string        `json:"type"`
	Timestamp    string        `json:"timestamp,omitempty"`
	Total        *int          `json:"total,omitempty"`
	Link         []bundleLink  `json:"link,omitempty"`
	Entry        []bundleEntry `json:"entry,omitempty"`
}

type bundleMeta struct {
	LastUpdated string   `json:"lastUpdated,omitempty"`
	Tag         []Coding `json:"tag,omitempty"`
}

type bundleLink struct {
	Relation string `json:"relation"`
	URL      string `json:"url"`
}

type bundleEntry struct {
	FullURL  string          `json:"fullUrl,omitempty"`
	Resource json.RawMessage `json:"resource"`
	Search   *entrySearch    `json:"search,omitempty"`
}

type entrySearch struct {
	Extension []searchExtension `json:"extension,omitempty"`
	Mode      string            `json:"mode"`
	Score     *float64          `json:"score,omitempty"`
}

// searchExtension is an extension on Bundle.entry.search (match-grade).
type searchExtension struct {
	URL       string `json:"url"`
	ValueCode string `json:"valueCode"`
}

// pageLinks builds self/first/previous/next links for one page. The links
// repeat the client's own query (they go back only to that client).
func pageLinks(base, resourceType string, q url.Values, offset, count, total int) []bundleLink {
	link := func(off int) string {
		v := url.Values{}
		for k, vs := range q {
			if k == "_offset" || k == "_count" {
				continue
			}
			v[k] = vs
		}
		v.Set("_count", strconv.Itoa(count))
		if off > 0 {
			v.Set("_offset", strconv.Itoa(off))
		}
		return fmt.Sprintf("%s/%s?%s", base, resourceType, v.Encode())
	}
	links := []bundleLink{{Relation: "self", URL: link(offset)}}
	if count == 0 {
		return links
	}
	links = append(links, bundleLink{Relation: "first", URL: link(0)})
	if offset > 0 {
		links = append(links, bundleLink{Relation: "previous", URL: link(max(0, offset-count))})
	}
	if offset+count < total {
		links = append(links, bundleLink{Relation: "next", URL: link(offset + count)})
	}
	if total > 0 {
		last := ((total - 1) / count) * count
		links = append(links, bundleLink{Relation: "last", URL: link(last)})
	}
	return links
}

func now() string { return time.Now().UTC().Format(time.RFC3339) }
