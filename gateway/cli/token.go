package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/server"
)

func newToken() *cobra.Command {
	var (
		cfgPath string
		m       auth.MintOptions
		scopes  []string
		ttl     time.Duration
	)
	c := &cobra.Command{
		Use:   "token",
		Short: "Mint a development bearer token (development key only); prints the token alone",
		Long: "Mint a SMART Backend Services style token signed with the development key of the\n" +
			"embedded default. Refuses when the configuration is not the development one.",
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cfgPath)
			if err != nil {
				return err
			}
			m.Scopes = scopes
			m.TTL = ttl
			tok, err := auth.Mint(server.AuthOptions(cfg.Auth), m)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.OutOrStdout(), tok)
			return nil
		},
	}
	f := c.Flags()
	f.StringVar(&cfgPath, "config", "", "config file (default: MHG_CONFIG, else the embedded default)")
	f.StringVar(&m.Org, "org", "", "requesting organisation identifier")
	f.StringVar(&m.Country, "country", "", "requesting country, ISO 3166-1 alpha-2 (DE, NL, ...)")
	f.StringVar(&m.Role, "role", "", "clinician, nurse, public-health, researcher, auditor, admin, ...")
	f.StringVar(&m.Purpose, "purpose", "", "HL7 v3 purpose of use: TREAT, ETREAT, COC, PATRQT, PUBHLTH, ...")
	f.StringArrayVar(&scopes, "scope", nil, "SMART scope, e.g. 'system/*.rs' (repeatable)")
	f.DurationVar(&ttl, "ttl", 0, "token lifetime (default 5m, at most 1h)")
	f.BoolVar(&m.BreakGlass, "break-glass", false, "assert an emergency (break-the-glass) override")
	f.StringVar(&m.Subject, "client", "", "client id (sub); default "+auth.DefaultDevSubject)
	return c
}
