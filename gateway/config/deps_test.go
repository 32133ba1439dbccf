package config_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// Only the wiring reads the configuration: the server translates each
// section into the Options of the component it configures, and the
// commands load it. Every other package (source, auth, telemetry, cache,
// federate, ...) takes Options and cannot depend on this package, so a
// component is built and tested the same way whoever builds it.
func TestOnlyTheWiringImportsConfig(t *testing.T) {
	const module = "github.com/migrant-health/mhg"
	allowed := []string{
		module + "/gateway/config",
		module + "/gateway/server",
		module + "/gateway/cli",
		module + "/gateway/cmd/mhg",
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	seen := map[string]bool{}
	for _, line := range lines {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		seen[pkg] = true
		if slices.Contains(allowed, pkg) {
			continue
		}
		if slices.Contains(deps, module+"/gateway/config") {
			t.Errorf("%s depends on gateway/config; give it Options and translate the section in gateway/server", pkg)
		}
	}
	// The list must hold the packages this test is about, or it proves
	// nothing.
	for _, p := range []string{"source", "auth", "telemetry", "cache", "federate", "server"} {
		if !seen[module+"/gateway/"+p] {
			t.Errorf("go list did not list gateway/%s (%d packages listed)", p, len(lines))
		}
	}
}
