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
		Short: "Policy tools for the legal team: test, check, explain, fmt",
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

	c.AddCommand(test, check, explain, format)
	return c
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}
