// Package mhgbin builds the mhg binary for tests that run it as a
// process of its own (start-up errors, several replicas).
package mhgbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Main is a TestMain body: it builds the mhg command into a temporary
// directory, stores the binary's path in *bin, runs the tests and removes
// the directory. A build failure ends the test binary with exit code 1.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "mhg-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "mhg")
	build := exec.Command("go", "build", "-o", *bin, "github.com/migrant-health/mhg/gateway/cmd/mhg")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build mhg:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Env is this process's environment without the MHG_ and OTEL_ variables,
// so that a gateway started from a test reads only the settings the test
// gives it.
func Env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MHG_") && !strings.HasPrefix(kv, "OTEL_") {
			env = append(env, kv)
		}
	}
	return env
}
