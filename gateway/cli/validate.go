package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/conformance"
)

func newValidate() *cobra.Command {
	var (
		profiles []string
		require  bool
	)
	c := &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check MHP data (JSON resources or Bundles, NDJSON) against the Migrant Health Profile",
		Long: "Check files of MHP data against the profiles they claim (and any --profile), as\n" +
			"integrators do before going live. Prints every issue with its FHIRPath-like location,\n" +
			"FILE[:LINE]: severity code at Location [rule]: message; exits 1 when any file has an error.",
		Args: cobra.MinimumNArgs(1),
		RunE: func(c *cobra.Command, args []string) error {
			checker, err := conformance.NewChecker(conformance.Options{Profiles: profiles, Require: require})
			if err != nil {
				return fmt.Errorf("%w: %v", errUsage, err)
			}
			w := c.OutOrStdout()
			failed := false
			for _, path := range args {
				bad, err := validateFile(w, checker, path)
				if err != nil {
					return err
				}
				failed = failed || bad
			}
			if failed {
				return exitCode(exitFailure)
			}
			return nil
		},
	}
	c.Flags().StringSliceVar(&profiles, "profile", nil, "also check against this MHP profile (canonical URL, repeatable)")
	c.Flags().BoolVar(&require, "require", false, "every resource an MHP profile is meant for must claim it")
	return c
}

// validateFile checks one file: a JSON resource, or one resource per line
// for *.ndjson. It reports whether any resource has an error.
func validateFile(w io.Writer, checker *conformance.Checker, path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, err
	}
	report := func(where string, issues []conformance.Issue) bool {
		if len(issues) == 0 {
			fmt.Fprintf(w, "%s: ok\n", where)
		}
		for _, is := range issues {
			line := where + ": " + is.String()
			if is.Diagnostics != "" {
				line += " (" + is.Diagnostics + ")"
			}
			fmt.Fprintln(w, line)
		}
		return conformance.HasErrors(issues)
	}
	if !strings.EqualFold(filepath.Ext(path), ".ndjson") {
		return report(path, checker.Check(b)), nil
	}
	failed := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		if report(fmt.Sprintf("%s:%d", path, n), checker.Check(bytes.Clone(sc.Bytes()))) {
			failed = true
		}
	}
	if err := sc.Err(); err != nil {
		return failed, fmt.Errorf("%s: %w", path, err)
	}
	return failed, nil
}
