package cli

import (
	"context"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/gateway/server"
)

func newServe() *cobra.Command {
	var cfgPath string
	c := &cobra.Command{
		Use:   "serve",
		Short: "Run the gateway",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			srv, err := server.New(ctx, cfg, server.Options{Stdout: c.OutOrStdout(), Stderr: c.ErrOrStderr()})
			if err != nil {
				// The error names the setting at fault: one line.
				return err
			}
			return srv.Run(ctx)
		},
	}
	c.Flags().StringVar(&cfgPath, "config", "", "config file (default: MHG_CONFIG, else the embedded default)")
	c.SetContext(context.Background())
	return c
}
