// Package examples ships the sample national data of the built-in demo
// sources (conformance/examples/<source-id>/) inside the binary, so that
// `mhg serve` with the default configuration needs no files on disk.
//
// Each source folder holds R4 Bundles (type collection, or IPS documents for
// ua-sample) written to that country's national profile. Everything in them
// is synthetic; README.md says where each part comes from.
package examples

import (
	"embed"
)

// FS is the sample data, one top-level folder per source id: folder
// de-sample is read as "de-sample/...".
//
//go:embed de-sample nl-sample ua-sample us-sample
var FS embed.FS

// Sources lists the source ids that have sample data, in the order of the
// default configuration.
var Sources = []string{"de-sample", "nl-sample", "ua-sample", "us-sample"}
