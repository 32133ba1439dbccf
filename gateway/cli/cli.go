package cli

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/server"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// errUsage marks errors that are the caller's mistake (exit code 2).
var errUsage = errors.New("usage")

// Main runs mhg with args (without the program name) and returns the exit
// code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot(stdin, stdout, stderr)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			// The command has said what went wrong already.
			return int(ec)
		}
		fmt.Fprintln(stderr, "mhg:", err)
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return exitFailure
	}
	return exitOK
}

// exitCode lets a command choose its exit status without printing more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

func newRoot(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "mhg",
		Short:         "Migrant Health Gateway: one FHIR R4 endpoint over the national EHRs of origin, transit and destination",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see mhg %s --help)", errUsage, err, c.Name())
	})
	root.AddCommand(
		newServe(),
		newToken(),
		newVersion(),
		newMap(),
		newAudit(),
		newCache(),
		newPolicy(),
		newValidate(),
		newStats(),
	)
	return root
}

// loadConfig loads the configuration from --config, else MHG_CONFIG, else
// the defaults, with MHG_* overrides.
func loadConfig(path string) (config.Config, error) {
	if path == "" {
		path = os.Getenv("MHG_CONFIG")
	}
	return config.Load(path, os.Environ())
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			fmt.Fprintln(c.OutOrStdout(), "mhg", server.Version)
			return nil
		},
	}
}
