package authz

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

// Every rule of the built-in policies is hit by some Rego test.
func TestBuiltinPoliciesFullRuleCoverage(t *testing.T) {
	t.Parallel()
	rep, err := Test(context.Background(), "", TestOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Failed+rep.Errored > 0 {
		t.Errorf("%d failed, %d errored", rep.Failed, rep.Errored)
	}
	for _, u := range rep.Uncovered {
		t.Errorf("no Rego test hits %s", u)
	}
	if rep.Rules < 100 || rep.Passed < 60 {
		t.Errorf("rules %d, passed %d: too few to be the policies", rep.Rules, rep.Passed)
	}
	t.Logf("%d Rego tests, %d rules, %.1f%% of lines", rep.Passed, rep.Rules, rep.LineCoverage)
}

func TestRunTestsOutput(t *testing.T) {
	t.Parallel()
	untested := "package mhg.authz\n\ndeny contains \"untested\" if input.phase == \"archive\"\n"
	failing := "package mhg.authz_test\n\ntest_wrong if false\n"
	tests := []struct {
		name    string
		files   map[string]string
		opts    TestOptions
		ok      bool
		want    []string
		notWant []string
	}{
		{
			name:    "built-in, quiet",
			ok:      true,
			want:    []string{`(?m)^PASS: (\d+)/(\d+)$`, `rules hit: (\d+)/(\d+) \(100\.0%\)`},
			notWant: []string{"test_domestic_query_allowed", "NOT HIT", "FAIL"},
		},
		{
			name: "verbose lists every test by file",
			opts: TestOptions{Verbose: true},
			ok:   true,
			want: []string{`(?m)^mhg/authz/main_test\.rego:$`, `data\.mhg\.authz_test\.test_domestic_query_allowed: PASS \(`},
		},
		{
			name:    "run filter",
			opts:    TestOptions{Verbose: true, Run: "test_us_is_domestic_only", AllowUncovered: true},
			ok:      true,
			want:    []string{`(?m)^PASS: 1/1$`},
			notWant: []string{"test_domestic_query_allowed"},
		},
		{
			name:  "a rule no test hits fails the run",
			files: map[string]string{"mhg/authz/untested.rego": untested},
			ok:    false,
			want:  []string{`NOT HIT: mhg/authz/untested\.rego:3: deny contains "untested"`},
		},
		{
			name:  "unless uncovered rules are allowed",
			files: map[string]string{"mhg/authz/untested.rego": untested},
			opts:  TestOptions{AllowUncovered: true},
			ok:    true,
			want:  []string{`NOT HIT: mhg/authz/untested\.rego:3`},
		},
		{
			name:  "a failing test",
			files: map[string]string{"mhg/authz/wrong_test.rego": failing},
			ok:    false,
			want:  []string{`data\.mhg\.authz_test\.test_wrong: FAIL \(`, `(?m)^FAIL: 1/\d+$`, `(?m)^mhg/authz/wrong_test\.rego:$`},
		},
		{
			name:  "policies that do not compile",
			files: map[string]string{"mhg/authz/broken.rego": "package mhg.authz\n\nx := y\n"},
			ok:    false,
			want:  []string{`ERROR: .*var y is unsafe`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := ""
			if len(tt.files) > 0 {
				dir = copyBuiltin(t)
				for name, content := range tt.files {
					writeFile(t, dir, name, content)
				}
			}
			var out strings.Builder
			ok, _ := RunTests(context.Background(), dir, &out, tt.opts)
			if ok != tt.ok {
				t.Errorf("ok = %v, want %v", ok, tt.ok)
			}
			for _, w := range tt.want {
				re := regexp.MustCompile(w)
				m := re.FindStringSubmatch(out.String())
				if m == nil {
					t.Errorf("output lacks %s:\n%s", w, out.String())
				} else if len(m) == 3 && m[1] != m[2] {
					t.Errorf("%s: %s of %s", w, m[1], m[2])
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out.String(), w) {
					t.Errorf("output holds %q:\n%s", w, out.String())
				}
			}
		})
	}
}
