// Command mhg is the Migrant Health Gateway: `mhg serve` runs the FHIR R4
// gateway; the other subcommands are the tools around it (development
// tokens, offline mapping, policy tests, audit verification, cache purge).
package main

import (
	"os"

	"github.com/migrant-health/mhg/gateway/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
