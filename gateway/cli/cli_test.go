package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// run calls Main and returns the exit code and what it printed.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dev := writeFile(t, dir, "dev.yml", "auth:\n  dev: true\n  dev_key_file: "+filepath.Join(dir, "k.pem")+"\n")
	code, out, errs := run(t, "token", "--config", dev, "--org", "o", "--country", "DE", "--role", "clinician", "--purpose", "TREAT", "--scope", "system/*.rs")
	if code != 0 || strings.Count(strings.TrimSpace(out), ".") != 2 || strings.Contains(strings.TrimSpace(out), "\n") {
		t.Fatalf("token: %d %q %q", code, out, errs)
	}
	prod := writeFile(t, dir, "prod.yml", "auth:\n  dev: false\n  jwks_file: /nonexistent\n  issuer: https://idp\n  audience: https://gw/fhir\nids:\n  key_file: /nonexistent\n")
	if code, out, errs := run(t, "token", "--config", prod, "--country", "DE"); code == 0 || out != "" || !strings.Contains(errs, "development key") {
		t.Fatalf("token with a non-development config: %d %q %q", code, out, errs)
	}
	if code, _, errs := run(t, "token", "--config", dev, "--country", "Germany"); code == 0 || errs == "" {
		t.Fatalf("bad country accepted: %d", code)
	}
	if code, _, errs := run(t, "token", "--bogus"); code != exitUsage || !strings.Contains(errs, "bogus") {
		t.Fatalf("unknown flag: %d %q", code, errs)
	}
}

func TestPolicyBench(t *testing.T) {
	t.Parallel()
	code, out, errs := run(t, "policy", "bench", "--agreements", "50,60", "-n", "20")
	if code != 0 {
		t.Fatalf("bench: %d %s %s", code, out, errs)
	}
	// The empty baseline and each agreement count, both phases; the real
	// policy allows what it measures (a deny would measure a short cut).
	for _, want := range []string{"empty    query", "empty  release", "50 agreements    query", "60 agreements  release"} {
		if !strings.Contains(out, want) {
			t.Errorf("bench output lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "allow") != 4 {
		t.Errorf("bench rows of the real policy should allow:\n%s", out)
	}
	if code, _, _ := run(t, "policy", "bench", "--provisions", "21"); code == 0 {
		t.Fatalf("21 provisions accepted")
	}
}

func TestVersion(t *testing.T) {
	t.Parallel()
	if code, out, _ := run(t, "version"); code != 0 || !strings.HasPrefix(out, "mhg ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestPolicyCommands(t *testing.T) {
	t.Parallel()
	if code, out, errs := run(t, "policy", "check"); code != 0 || !strings.Contains(out, ": OK") {
		t.Fatalf("check of the built-in policies: %d %s %s", code, out, errs)
	}
	if code, out, errs := run(t, "policy", "test", filepath.Join("..", "..", "policies")); code != 0 || !strings.Contains(out, "PASS") {
		t.Fatalf("test of policies/: %d %s %s", code, out, errs)
	}
	// A rule that reads a protected attribute fails the check.
	dir := t.TempDir()
	writeFile(t, dir, "bad.rego", "package mhg.authz\n\nimport rego.v1\n\ndeny contains \"x\" if input.patient.gender == \"female\"\n")
	if code, out, _ := run(t, "policy", "check", dir); code != exitFailure || !strings.Contains(out, "FAIL") {
		t.Fatalf("check of a discriminatory rule: %d %s", code, out)
	}
	in := writeFile(t, dir, "input.json", `{"phase":"query","requester":{"client_id":"c","org":"o","country":"DE","role":"clinician","purpose_of_use":"TREAT","scopes":["system/*.rs"],"break_glass":false},"action":{"interaction":"search-type","resource_type":"Patient"},"source":{"id":"nl-sample","country":"NL"},"consent":[]}`)
	code, out, errs := run(t, "policy", "explain", "--input", in)
	if code != 0 || !strings.Contains(out, `"allow": true`) || !strings.Contains(out, "agreement") {
		t.Fatalf("explain: %d %s %s", code, out, errs)
	}
	if code, _, _ := run(t, "policy", "explain"); code != exitUsage {
		t.Fatalf("explain without --input: %d", code)
	}
}

func TestMapCommand(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "out")
	in := filepath.Join("..", "federate", "testdata", "uk-core-patients.json")
	code, stdout, errs := run(t, "map", "--profile", "uk-core", in, "--out", out)
	if code != 0 || !strings.Contains(stdout, "Patient.ndjson") || !strings.Contains(stdout, "restricted") {
		t.Fatalf("map: %d %s %s", code, stdout, errs)
	}
	b, err := os.ReadFile(filepath.Join(out, "Patient.ndjson"))
	if err != nil || strings.Count(string(b), "\n") != 3 {
		t.Fatalf("Patient.ndjson: %v %q", err, b)
	}
	if code, _, errs := run(t, "map", "--profile", "xx", in, "--out", out); code != exitUsage || !strings.Contains(errs, "unknown profile") {
		t.Fatalf("unknown profile: %d %s", code, errs)
	}
	broken := writeFile(t, t.TempDir(), "broken.json", `{"resourceType":"Bundle",`)
	out2 := filepath.Join(t.TempDir(), "out2")
	if code, _, _ := run(t, "map", "--profile", "uk-core", in, broken, "--out", out2); code == 0 {
		t.Fatal("a broken input must fail the conversion")
	}
	if entries, _ := os.ReadDir(out2); len(entries) != 0 {
		t.Fatalf("a failed conversion left files: %v", entries)
	}
}

func TestAuditVerify(t *testing.T) {
	t.Parallel()
	good := filepath.Join("..", "audit", "chain", "testdata", "chain.jsonl")
	code, out, errs := run(t, "audit", "verify", good)
	if code != 0 || !strings.HasPrefix(out, "OK") {
		t.Fatalf("verify of a good log: %d %s %s", code, out, errs)
	}
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitAfter(string(b), "\n")
	if len(lines) < 3 {
		t.Fatal("test log too short")
	}
	lines[1] = strings.Replace(lines[1], `"seq":2`, `"seq":2 `, 1)
	if lines[1] == strings.SplitAfter(string(b), "\n")[1] {
		lines[1] = strings.Replace(lines[1], "a", "b", 1)
	}
	bad := writeFile(t, t.TempDir(), "bad.jsonl", strings.Join(lines, ""))
	code, out, _ = run(t, "audit", "verify", bad)
	if code != exitFailure || !strings.Contains(out, "BROKEN") || !strings.Contains(out, "line 2") {
		t.Fatalf("verify of a tampered log: %d %s", code, out)
	}
}

func TestCachePurgeNeedsRedis(t *testing.T) {
	t.Parallel()
	if code, _, errs := run(t, "cache", "purge", "--source", "de-sample"); code == 0 || !strings.Contains(errs, "in-process") {
		t.Fatalf("purge with the in-process default: %d %s", code, errs)
	}
	if code, _, _ := run(t, "cache", "purge"); code != exitUsage {
		t.Fatalf("purge without --source: %d", code)
	}
}

func TestValidateCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join("..", "..", "conformance", "testdata", "mhp", "patient.json")
	doc := filepath.Join("..", "summary", "testdata", "duplicates-folded", "want.json")
	bad := writeFile(t, dir, "export.ndjson",
		`{"resourceType":"Patient","id":"a","meta":{"profile":["https://fhir.migrant-health.org/mhp/StructureDefinition/mhp-patient"]},"name":[{"family":"X"}],"birthDate":"1990","identifier":[{"system":"http://nphies.sa/identifier/iqama","value":"1"}]}`+"\n\n"+
			`{"resourceType":"Patient","id":"b","birthDate":"not a date"}`+"\n")
	if code, out, errs := run(t, "validate", good, doc); code != 0 || strings.Count(out, ": ok") != 2 {
		t.Fatalf("conformant files: %d %q %q", code, out, errs)
	}
	code, out, _ := run(t, "validate", good, bad)
	if code != exitFailure {
		t.Fatalf("exit %d for a file with errors:\n%s", code, out)
	}
	for _, want := range []string{
		good + ": ok",
		bad + ":1: error invariant at Patient.identifier[0] [mhp-pat-2]",
		bad + ":3: error structure",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if code, _, errs := run(t, "validate", "--profile", "https://example.org/x", good); code != exitUsage || !strings.Contains(errs, "unknown profile") {
		t.Fatalf("unknown profile: %d %q", code, errs)
	}
	if code, _, _ := run(t, "validate", filepath.Join(dir, "missing.json")); code != exitFailure {
		t.Fatalf("missing file: %d", code)
	}
}

func TestStatsUsage(t *testing.T) {
	t.Setenv("MHG_TOKEN", "")
	for _, args := range [][]string{
		{"stats", "mhp-tb-active"},
		{"stats", "mhp-tb-active", "--period", "2025..", "--token", "x"},
		{"stats", "mhp-tb-active", "--period", "2025"},
		{"stats", "--period", "2025", "--token", "x"},
	} {
		if code, _, _ := run(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
	// A gateway that refuses: the OperationOutcome's reasons are printed.
	code, _, stderr := run(t, "stats", "mhp-tb-active", "--period", "2025", "--token", "x", "--url", "http://127.0.0.1:1/fhir", "--timeout", "5s")
	if code != exitFailure || !strings.Contains(stderr, "gateway") {
		t.Errorf("unreachable gateway: exit %d, %s", code, stderr)
	}
}
