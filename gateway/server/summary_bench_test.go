package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/source"
)

// sourceDelay is what every request to a national server of the summary
// benchmark waits before it is answered: a fixed, small network and
// back-end latency, so that the ratios below say how many source round
// trips a summary costs, not how fast this machine parses JSON.
const sourceDelay = 10 * time.Millisecond

// BenchmarkSummary is Patient/$summary over three national FHIR servers
// (UA origin with IPS, NL transit, DE destination; each answers after
// sourceDelay), through the whole gateway over loopback HTTP: identity
// resolution, query and release decisions by the shipped policies,
// mapping, merging, narratives and audit.
//
//   - cold: Cache-Control: no-cache, so every source is asked again
//     (identity resolution, consent, one search per record type, pages);
//   - warm: the same request served from the cache;
//   - slowest-source-fetch: the baseline, one Patient search by passport
//     through the gateway's own FHIR connector, against each server in
//     turn; the slowest of the three is the unit of the ratios.
//
// Each summary reports x-slowest-fetch: its time per operation divided by
// the slowest single source fetch measured in the same run. The fan-out
// is parallel, so a cold summary costs a few sequential round trips (the
// resolution round, the consent lookup, the record searches and their
// second pages), not one per source and type.
func BenchmarkSummary(b *testing.B) {
	srcs := newSummarySources(b)
	for _, s := range []*nationalServer{srcs.ua, srcs.nl, srcs.de} {
		s.slowFor = sourceDelay
		s.mode.Store("slow")
	}
	g := startGateway(b, srcs.config(true, 5*time.Second), Options{})
	tok := g.token(b, "DE", "clinician", "TREAT")
	path := g.base + "/Patient/$summary?identifier=" + url.QueryEscape(aminaPassport)
	if r := g.get(b, path, tok); r.status != 200 {
		b.Fatalf("summary %d: %.300s", r.status, r.body)
	}

	slowest := slowestSourceFetch(b, srcs, 20)
	b.Run("slowest-source-fetch", func(b *testing.B) {
		b.ReportAllocs()
		conn := fhirConnector(b, srcs.de.URL)
		q := url.Values{"identifier": {aminaPassport}}
		for b.Loop() {
			if _, err := conn.Search(context.Background(), "Patient", q); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(slowest.Microseconds())/1000, "slowest-ms")
	})
	for _, bc := range []struct {
		name string
		hdr  []string
	}{
		{"cold", []string{"Cache-Control", "no-cache"}},
		{"warm", nil},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			req, err := http.NewRequest(http.MethodGet, path, nil)
			if err != nil {
				b.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			for i := 0; i+1 < len(bc.hdr); i += 2 {
				req.Header.Set(bc.hdr[i], bc.hdr[i+1])
			}
			for b.Loop() {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				drain(resp)
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
			perOp := b.Elapsed() / time.Duration(b.N)
			b.ReportMetric(float64(perOp)/float64(slowest), "x-slowest-fetch")
		})
	}
	if srcs.us.requests.Load() != 0 {
		b.Fatal("the US source was contacted")
	}
}

// slowestSourceFetch measures, for each of the three servers, the mean of
// n Patient searches by passport through the gateway's FHIR connector, and
// returns the slowest mean.
func slowestSourceFetch(b *testing.B, srcs *summarySources, n int) time.Duration {
	b.Helper()
	var slowest time.Duration
	q := url.Values{"identifier": {aminaPassport}}
	for _, u := range []string{srcs.ua.URL, srcs.nl.URL, srcs.de.URL} {
		conn := fhirConnector(b, u)
		start := time.Now()
		for range n {
			if _, err := conn.Search(context.Background(), "Patient", q); err != nil {
				b.Fatal(err)
			}
		}
		if d := time.Since(start) / time.Duration(n); d > slowest {
			slowest = d
		}
	}
	return slowest
}

func fhirConnector(b *testing.B, base string) source.Source {
	b.Helper()
	conn, err := source.Open(source.Options{ID: "bench", Country: "DE", Profile: "de-basis", Kind: source.KindFHIR, BaseURL: base,
		Timeout: 5 * time.Second, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	return conn
}

func drain(resp *http.Response) {
	defer resp.Body.Close()
	buf := make([]byte, 32<<10)
	for {
		if _, err := resp.Body.Read(buf); err != nil {
			return
		}
	}
}
