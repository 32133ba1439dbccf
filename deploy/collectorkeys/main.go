// Command collectorkeys prints the keep_keys statement of
// deploy/otel-collector.yaml from the gateway's attribute allow-list, so
// that the collector's second guard keeps exactly what the gateway lets
// out. Run it after changing the allow-list and paste its output into both
// keep_keys statements (deploy_test checks that they match):
//
//	go run ./deploy/collectorkeys
package main

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/migrant-health/mhg/gateway/telemetry"
)

func main() {
	var keys []string
	for _, k := range telemetry.AllowedKeys() {
		keys = append(keys, `"`+string(k)+`"`)
	}
	sort.Strings(keys)
	var lines []string
	line := ""
	for _, k := range keys {
		if len(line)+len(k)+2 > 92 {
			lines = append(lines, strings.TrimSuffix(line, " "))
			line = ""
		}
		line += k + ", "
	}
	lines = append(lines, strings.TrimSuffix(line, ", "))
	fmt.Fprintf(os.Stdout, "keep_keys(attributes, [\n%s\n])\n", strings.Join(lines, "\n"))
}
