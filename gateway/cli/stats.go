package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/gateway/stats"
)

// byAliases are short names `mhg stats --by` accepts for catalogue codes.
var byAliases = map[string]string{"age-band": "age-band-5", "age": "age-band-5", "country": "reporting-country"}

// statsPeriod reads --period: one FHIR date (2025, 2025-03, 2025-03-15)
// for the whole of it, or two joined by ".." for a range.
func statsPeriod(p string) (start, end string, err error) {
	start, end, ok := strings.Cut(p, "..")
	if !ok {
		end = start
	}
	if start == "" || end == "" {
		return "", "", fmt.Errorf("%w: --period wants a date (2025, 2025-03, 2025-03-15) or FROM..TO", errUsage)
	}
	return start, end, nil
}

func newStats() *cobra.Command {
	var (
		period, by, base, token string
		timeout                 time.Duration
	)
	c := &cobra.Command{
		Use:   "stats MEASURE --period P [--by A,B]",
		Short: "Print a measure's table from a running gateway (masked cells shown as masked)",
		Long: "Ask a running gateway for Measure/MEASURE/$evaluate-measure and print the released table:\n" +
			"a row for the total and one per stratum, a column per population; counts withheld by\n" +
			"disclosure control are shown as \"masked\". The gateway decides and audits the request as\n" +
			"for any client: the token (--token, else MHG_TOKEN) must be a statistics one, e.g.\n" +
			"  mhg token --country DE --role researcher --purpose HRESCH --scope system/Measure.rs --scope system/MeasureReport.rs\n" +
			"--by takes up to two codes of the strata catalogue (sex, age-band-5, age-band-who,\n" +
			"country-of-birth, citizenship, migration-status, length-of-stay, reporting-country);\n" +
			"age-band means age-band-5.",
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("%w: name one measure (mhg stats MEASURE --period P)", errUsage)
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			start, end, err := statsPeriod(period)
			if err != nil {
				return err
			}
			if token == "" {
				token = os.Getenv("MHG_TOKEN")
			}
			if token == "" {
				return fmt.Errorf("%w: a bearer token is needed (--token or MHG_TOKEN; see mhg token)", errUsage)
			}
			q := url.Values{"periodStart": {start}, "periodEnd": {end}}
			var strata []string
			for _, s := range strings.Split(by, ",") {
				if s = strings.TrimSpace(s); s == "" {
					continue
				}
				if a, ok := byAliases[s]; ok {
					s = a
				}
				strata = append(strata, s)
			}
			if len(strata) > 0 {
				q.Set("stratifier", strings.Join(strata, ","))
			}
			u := strings.TrimRight(base, "/") + "/Measure/" + url.PathEscape(args[0]) + "/$evaluate-measure?" + q.Encode()
			ctx, cancel := context.WithTimeout(c.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return fmt.Errorf("%w: --url: %v", errUsage, err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "application/fhir+json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("gateway %s: %w", base, err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
			if err != nil {
				return fmt.Errorf("gateway %s: %w", base, err)
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("gateway answered %d: %s", resp.StatusCode, outcomeText(body))
			}
			return stats.WriteTable(c.OutOrStdout(), body)
		},
	}
	f := c.Flags()
	f.StringVar(&period, "period", "", "the period: 2025, 2025-03, 2025-03-15, or FROM..TO (widened by the gateway to whole months or coarser)")
	f.StringVar(&by, "by", "", "up to two strata, comma-separated: sex,age-band")
	f.StringVar(&base, "url", "http://127.0.0.1:8080/fhir", "FHIR base of the gateway")
	f.StringVar(&token, "token", "", "bearer token (default: MHG_TOKEN)")
	f.DurationVar(&timeout, "timeout", 3*time.Minute, "how long to wait for the gateway")
	return c
}

// outcomeText is what an OperationOutcome says, in one line.
func outcomeText(b []byte) string {
	var oo struct {
		Issue []struct {
			Diagnostics string `json:"diagnostics"`
			Details     struct {
				Text   string `json:"text"`
				Coding []struct{ Code string }
			} `json:"details"`
		} `json:"issue"`
	}
	if json.Unmarshal(b, &oo) != nil || len(oo.Issue) == 0 {
		return strings.TrimSpace(string(b))
	}
	var parts []string
	for _, is := range oo.Issue {
		for _, t := range []string{is.Details.Text, is.Diagnostics} {
			if t != "" {
				parts = append(parts, t)
			}
		}
		for _, c := range is.Details.Coding {
			parts = append(parts, c.Code)
		}
	}
	return strings.Join(parts, "; ")
}
