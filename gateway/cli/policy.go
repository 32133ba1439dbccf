package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/gateway/authz"
)

func newPolicy() *cobra.Command {
	c := &cobra.Command{
		Use:   "policy",
		Short: "Policy tools for the legal team: test, check, explain, fmt, bench",
		Long: "Work on the Rego policies without touching Go. DIR is a policy directory in OPA bundle\n" +
			"layout; without it, the policies built into this binary. See policies/README.md.",
	}
	var opts authz.TestOptions
	test := &cobra.Command{
		Use:   "test [DIR]",
		Short: "Run the Rego tests with coverage; fails when a test fails or a rule is never hit",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			ok, err := authz.RunTests(c.Context(), dirArg(args), c.OutOrStdout(), opts)
			if err != nil {
				return err
			}
			if !ok {
				return exitCode(exitFailure)
			}
			return nil
		},
	}
	test.Flags().BoolVarP(&opts.Verbose, "verbose", "v", false, "print every test")
	test.Flags().StringVar(&opts.Run, "run", "", "only tests whose name matches this regular expression")
	test.Flags().BoolVar(&opts.AllowUncovered, "allow-uncovered", false, "report rules no test hits without failing")

	check := &cobra.Command{
		Use:   "check [DIR]",
		Short: "Compile, format and lint the policies; check the input schema and that no rule reads a protected attribute",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			rep, err := authz.Check(c.Context(), dirArg(args))
			if len(rep.Problems) > 0 || err == nil {
				rep.Write(c.OutOrStdout())
			}
			if !rep.OK() {
				return exitCode(exitFailure)
			}
			return err
		},
	}

	var input, dir string
	explain := &cobra.Command{
		Use:   "explain --input FILE [--dir DIR]",
		Short: "Explain the decision for one policy input: allowed or not, the reasons, the rules that fired",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if input == "" {
				return fmt.Errorf("%w: --input is required (a JSON policy input, as in the decision log)", errUsage)
			}
			b, err := os.ReadFile(input)
			if err != nil {
				return err
			}
			ex, err := authz.Explain(c.Context(), dir, b)
			if err != nil {
				return err
			}
			enc := json.NewEncoder(c.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(ex)
		},
	}
	explain.Flags().StringVar(&input, "input", "", "policy input JSON file")
	explain.Flags().StringVar(&dir, "dir", "", "policy directory (default: the built-in policies)")

	format := &cobra.Command{
		Use:   "fmt DIR",
		Short: "Rewrite the Rego files of a policy directory in opa fmt style; lists the files changed",
		Args:  cobra.ExactArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			changed, err := authz.Format(args[0])
			for _, f := range changed {
				fmt.Fprintln(c.OutOrStdout(), f)
			}
			return err
		},
	}

	var benchOpts authz.BenchOptions
	var benchJSON bool
	bench := &cobra.Command{
		Use:   "bench [DIR]",
		Short: "Measure what the policies cost per decision (p50, p99, allocations) next to an empty policy",
		Long: "Decide a cross-border query and a release with consent provisions many times, with the\n" +
			"policy's agreements grown to each --agreements count, and an empty policy in the same run as\n" +
			"the baseline. The x empty column is what the policy adds; it should not grow with agreements.",
		Args: cobra.MaximumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			benchOpts.Dir = dirArg(args)
			rep, err := authz.Bench(c.Context(), benchOpts)
			if err != nil {
				return err
			}
			if benchJSON {
				enc := json.NewEncoder(c.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.Write(c.OutOrStdout())
			return nil
		},
	}
	bench.Flags().IntSliceVar(&benchOpts.Agreements, "agreements", []int{200, 2000}, "agreement counts to measure")
	bench.Flags().IntVar(&benchOpts.Provisions, "provisions", 20, "consent provisions in the release decision (1 to 20)")
	bench.Flags().IntVarP(&benchOpts.Iterations, "n", "n", 2000, "decisions per row")
	bench.Flags().BoolVar(&benchJSON, "json", false, "print the report as JSON")
	bench.Flags().BoolVar(&benchOpts.Memo, "memo", false, "also measure the decisions served from the decision memo")

	c.AddCommand(test, check, explain, format, bench)
	return c
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}
