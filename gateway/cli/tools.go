package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/mappings"
)

func newMap() *cobra.Command {
	var (
		profile, out string
		provenance   bool
		keepReligion bool
	)
	c := &cobra.Command{
		Use:   "map --profile ID IN... --out DIR",
		Short: "Map national FHIR exports (Bundles, NDJSON) into the MHP, offline",
		Long: "Map files written to a national profile into the Migrant Health Profile. Writes one\n" +
			"NDJSON file per resource type to DIR (class S data to <Type>.restricted.ndjson, the loss\n" +
			"report to OperationOutcome.ndjson). Nothing is written unless every input could be read.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if profile == "" || out == "" {
				return fmt.Errorf("%w: --profile and --out are required", errUsage)
			}
			eng, err := mappings.Load()
			if err != nil {
				return err
			}
			if _, ok := eng.Profile(profile); !ok {
				return fmt.Errorf("%w: unknown profile %q (known: %v)", errUsage, profile, eng.Profiles())
			}
			st, err := mappings.Convert(c.Context(), eng, mappings.ConvertOptions{
				Profile: profile, Inputs: args, OutDir: out, Progress: progressBar(c.ErrOrStderr()), Provenance: provenance,
				Map: mappings.Options{KeepReligion: keepReligion},
			})
			if err != nil {
				return err
			}
			w := c.OutOrStdout()
			fmt.Fprintf(w, "read %d resources from %d files; wrote %d (%d class S), skipped %d, %d loss-report issues\n",
				st.Read, st.Files, st.Written, st.Sensitive, st.Skipped, st.Issues)
			names := make([]string, 0, len(st.ByType))
			for n := range st.ByType {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(w, "  %-40s %d\n", n, st.ByType[n])
			}
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&profile, "profile", "", "national profile of the inputs ("+strings.Join(mappings.ProfileIDs(), ", ")+")")
	f.StringVar(&out, "out", "", "output directory")
	f.BoolVar(&provenance, "provenance", false, "also write Provenance.ndjson")
	f.BoolVar(&keepReligion, "keep-religion", false, "keep patient-religion (dropped by default)")
	return c
}

func newAudit() *cobra.Command {
	c := &cobra.Command{Use: "audit", Short: "Audit log tools"}
	c.AddCommand(&cobra.Command{
		Use:   "verify FILE",
		Short: "Check an audit log's hash chain; names the first broken record",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			rep, err := audit.Verify(f)
			if !rep.OK() {
				fmt.Fprintf(c.OutOrStdout(), "BROKEN at %s (%d records intact before it)\n", rep.Broken, rep.Records)
				return exitCode(exitFailure)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.OutOrStdout(), "OK: %d records, head seq %d hash %s\n", rep.Records, rep.LastSeq, rep.LastHash)
			return nil
		},
	})
	return c
}

func newCache() *cobra.Command {
	c := &cobra.Command{Use: "cache", Short: "Cache tools"}
	var cfgPath, src string
	purge := &cobra.Command{
		Use:   "purge --source ID",
		Short: "Remove everything the cache holds from one source",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if src == "" {
				return fmt.Errorf("%w: --source is required", errUsage)
			}
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			if cfg.Redis.URL == "" && len(cfg.Redis.Addrs) == 0 {
				return errors.New("the configuration uses the in-process cache, which lives in the server: use POST /admin/cache/$purge on it")
			}
			ch, err := cache.FromConfig(cfg.Cache, cfg.Redis, cache.Options{})
			if err != nil {
				return err
			}
			defer ch.Close()
			n, err := ch.PurgeSource(context.Background(), src)
			if err != nil {
				return err
			}
			if ch.Degraded() {
				return errors.New("redis is unavailable: nothing purged")
			}
			fmt.Fprintf(c.OutOrStdout(), "purged %d entries of source %s\n", n, src)
			return nil
		},
	}
	purge.Flags().StringVar(&src, "source", "", "source id")
	purge.Flags().StringVar(&cfgPath, "config", "", "config file (default: MHG_CONFIG, else the embedded default)")
	c.AddCommand(purge)
	return c
}

// progressBar draws mhg map's progress on w when it is a terminal; nil
// (no progress) otherwise.
func progressBar(w io.Writer) mappings.Progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions64(0,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription("mapping"),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionClearOnFinish(),
	)
}
