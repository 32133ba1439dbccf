// Package policies ships the Rego policies, their data and the policy input
// schema inside the mhg binary. The files themselves are owned by the legal
// team (see README.md); this package only embeds them, because go:embed
// cannot reach a parent directory from gateway/authz.
package policies

import (
	"embed"
	"io/fs"
)

//go:embed .manifest mhg data schema
var files embed.FS

// FS is the built-in policy bundle in OPA bundle layout: .manifest,
// mhg/**/*.rego (with their *_test.rego), data/*.json and
// schema/input.json.
var FS fs.FS = files

// SchemaPath is where the policy input schema sits in FS (and in any
// policy directory laid out like it).
const SchemaPath = "schema/input.json"

// InputSchema returns the JSON schema of the policy input: the only paths a
// rule may read under `input`.
func InputSchema() []byte {
	b, err := files.ReadFile(SchemaPath)
	if err != nil {
		// The file is embedded at build time; its absence is a build bug.
		panic("policies: input schema missing from the binary: " + err.Error())
	}
	return b
}
