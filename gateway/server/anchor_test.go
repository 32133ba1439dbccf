package server

import (
	"net/url"
	"strings"
	"testing"
)

// $summary and $everything anchored on the migrant's record from another
// country (here NL and UA, for a DE clinician) gather every country's
// records, as anchored by passport: the real redaction policy strips a
// cross-border Patient's identifiers before release, and identity
// resolution uses the identifiers the source gave.
func TestSummaryAnchoredAbroad(t *testing.T) {
	t.Parallel()
	srcs := newSummarySources(t)
	g := startGateway(t, srcs.config(false, sourceTimeout), Options{})
	tok := g.token(t, "DE", "clinician", "TREAT")

	found := g.get(t, "/Patient?identifier="+url.QueryEscape(aminaPassport), tok)
	if found.status != 200 {
		t.Fatalf("search: %d %s", found.status, found.body)
	}
	bySource := map[string]string{}
	for _, p := range found.entries("match") {
		id := p["id"].(string)
		src, _, _ := strings.Cut(id, ".")
		bySource[src] = id
	}
	for _, src := range []string{"ua-ehealth", "nl-lsp", "de-kbv"} {
		pid := bySource[src]
		if pid == "" {
			t.Fatalf("no %s Patient among %v", src, bySource)
		}
		t.Run(src, func(t *testing.T) {
			d := parseDoc(t, g.get(t, "/Patient/"+pid+"/$summary", tok))
			contributed := map[string]bool{}
			for ref := range d.byRef {
				for _, s := range d.provenancesOf(ref) {
					contributed[s] = true
				}
			}
			if !contributed["ua-ehealth"] || !contributed["nl-lsp"] || !contributed["de-kbv"] || len(contributed) != 3 {
				t.Fatalf("$summary anchored on %s has entries from %v, want all three countries", src, contributed)
			}
			ev := g.get(t, "/Patient/"+pid+"/$everything?_type=Patient&_count=50", tok)
			if ev.status != 200 {
				t.Fatalf("$everything: %d %s", ev.status, ev.body)
			}
			checkFullURLs(t, g, ev)
			if got := sourcesOf(ev.entries("match")); got["ua-ehealth"] != 1 || got["nl-lsp"] != 1 || got["de-kbv"] != 1 || len(got) != 3 {
				t.Fatalf("$everything anchored on %s linked %v", src, got)
			}
		})
	}
}
