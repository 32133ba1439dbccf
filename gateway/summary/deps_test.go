package summary_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The summary package renders documents and nothing else: no network, no
// sources, no cache, no policy engine among its dependencies, so that it
// stays testable from files alone and cannot grow a second fan-out.
func TestNoNetworkDependencies(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to list dependencies: %v", err)
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps gave %d packages: %q", len(deps), out)
	}
	forbidden := []string{
		"net/http",
		"github.com/migrant-health/mhg/gateway/source",
		"github.com/migrant-health/mhg/gateway/cache",
		"github.com/migrant-health/mhg/gateway/authz",
		"github.com/migrant-health/mhg/gateway/federate",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f {
				t.Errorf("the summary package depends on %s", d)
			}
		}
	}
}
