package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/migrant-health/mhg/gateway/audit"
	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/server"
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
	c := &cobra.Command{Use: "audit", Short: "Audit log and audit repository tools"}
	var (
		database, checkpoints string
		keys                  []string
	)
	verify := &cobra.Command{
		Use:   "verify FILE | verify --database URL [--key FILE]... [--checkpoints FILE]",
		Short: "Check an audit log's hash chain, or every chain and signed checkpoint in the repository; names the first failure",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			if database != "" {
				if len(args) > 0 {
					return fmt.Errorf("%w: give a FILE or --database, not both", errUsage)
				}
				return verifyRepository(c, database, keys, checkpoints)
			}
			if len(args) != 1 {
				return fmt.Errorf("%w: give the audit log FILE or --database URL", errUsage)
			}
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
	}
	verify.Flags().StringVar(&database, "database", "", "PostgreSQL audit repository URL (default: none; MHG_AUDIT_DATABASE_URL is not read, so a FILE is never mistaken for it)")
	verify.Flags().StringArrayVar(&keys, "key", nil, "file holding a checkpoint verifier key (`mhg audit keygen` writes it); repeatable; without one, checkpoints are not checked")
	verify.Flags().StringVar(&checkpoints, "checkpoints", "", "checkpoint file kept elsewhere (audit.checkpoint_file), checked beside the repository's")
	c.AddCommand(verify)

	var name, out string
	keygen := &cobra.Command{
		Use:   "keygen --out PREFIX [--name NAME]",
		Short: "Make a checkpoint signing key (PREFIX.key, for audit.checkpoint_key_file) and its verifier key (PREFIX.pub); an existing pair is kept",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("%w: --out is required", errUsage)
			}
			if pub, err := os.ReadFile(out + ".pub"); err == nil {
				if _, err := os.Stat(out + ".key"); err == nil {
					// Never replace a signing key: checkpoints signed with it
					// would no longer verify against the published key.
					fmt.Fprintln(c.ErrOrStderr(), "keygen: "+out+".key exists; kept")
					fmt.Fprint(c.OutOrStdout(), string(pub))
					return nil
				}
			}
			skey, vkey, err := repository.GenerateKey(name)
			if err != nil {
				return err
			}
			if err := os.WriteFile(out+".key", []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), vkey)
			return nil
		},
	}
	keygen.Flags().StringVar(&out, "out", "", "path prefix of the two key files")
	keygen.Flags().StringVar(&name, "name", "mhg-audit", "key name (the verifier looks it up by name)")
	c.AddCommand(keygen)

	var migrateURL string
	migrate := &cobra.Command{
		Use:   "migrate [--database URL]",
		Short: "Apply the audit repository's schema migrations (for audit.migrate: false)",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if migrateURL == "" {
				migrateURL = os.Getenv("MHG_AUDIT_DATABASE_URL")
			}
			if migrateURL == "" {
				return fmt.Errorf("%w: --database or MHG_AUDIT_DATABASE_URL is required", errUsage)
			}
			r, err := repository.Open(c.Context(), repository.Options{URL: migrateURL, Migrate: true, Logger: slog.New(slog.NewTextHandler(c.ErrOrStderr(), nil))})
			if err != nil {
				return err
			}
			r.Close()
			fmt.Fprintln(c.OutOrStdout(), "OK: the audit repository schema is up to date")
			return nil
		},
	}
	migrate.Flags().StringVar(&migrateURL, "database", "", "PostgreSQL audit repository URL (default: MHG_AUDIT_DATABASE_URL)")
	c.AddCommand(migrate)
	return c
}

// verifyRepository runs `mhg audit verify --database`.
func verifyRepository(c *cobra.Command, url string, keyFiles []string, checkpointFile string) error {
	var opts repository.VerifyOptions
	for _, f := range keyFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		opts.VerifierKeys = append(opts.VerifierKeys, strings.TrimSpace(string(b)))
	}
	if checkpointFile != "" {
		notes, err := repository.ReadCheckpointFile(checkpointFile)
		if err != nil {
			return err
		}
		opts.Checkpoints = notes
	}
	r, err := repository.Open(c.Context(), repository.Options{URL: url})
	if err != nil {
		return err
	}
	defer r.Close()
	rep, err := r.Verify(c.Context(), opts)
	w := c.OutOrStdout()
	if !rep.OK() {
		fmt.Fprintf(w, "BROKEN at %s\n", rep.Failure)
		return exitCode(exitFailure)
	}
	if err != nil {
		return err
	}
	total, cps := uint64(0), 0
	for _, ir := range rep.Instances {
		total += ir.Records
		cps += ir.Checkpoints
		fmt.Fprintf(w, "  %s: %d records, head seq %d hash %s, %d checkpoints\n", ir.Instance, ir.Records, ir.HeadSeq, ir.HeadHash, ir.Checkpoints)
	}
	if len(opts.VerifierKeys) == 0 {
		fmt.Fprintln(w, "  (no --key: checkpoints not checked, so a cut tail would go unseen)")
	}
	fmt.Fprintf(w, "OK: %d instances, %d records, %d checkpoints\n", len(rep.Instances), total, cps)
	return nil
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
			ropts := server.RedisOptions(cfg.Redis)
			if ropts == nil {
				return errors.New("the configuration uses the in-process cache, which lives in the server: use POST /admin/cache/$purge on it")
			}
			store, err := cache.NewRedisStore(*ropts)
			if err != nil {
				return fmt.Errorf("cache: %w", err)
			}
			ch, err := cache.New(cache.Options{Store: store})
			if err != nil {
				_ = store.Close()
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
