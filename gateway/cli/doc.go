// Package cli is mhg's command line: the cobra commands behind `mhg serve`,
// `mhg token`, `mhg map`, `mhg policy`, `mhg audit`, `mhg cache` and
// `mhg version`. Each command parses its flags, loads the configuration and
// calls the package that does the work; none holds logic of its own, so
// that cmd/mhg stays a few lines.
package cli
