package cli

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/server"
	"github.com/migrant-health/mhg/gateway/stats"
)

// TestReadmeWalkthrough replays the README's curl walk-through against a
// gateway built from the embedded default: every token line is run through
// `mhg token`, every curl line is sent, and each answer must have the status
// the README promises ("-> 200 ..." in the comment above it).
func TestReadmeWalkthrough(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script := walkthrough(t, string(readme))

	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	cfgFile := filepath.Join(dir, "mhg.yml")
	auditLog := filepath.Join(dir, "audit.jsonl")
	yml := fmt.Sprintf("listen: %s\nauth:\n  dev: true\n  dev_key_file: %s\n  audience: http://%s/fhir\naudit:\n  log: %s\nlog:\n  level: error\n",
		addr, filepath.Join(dir, "key.pem"), addr, auditLog)
	if err := os.WriteFile(cfgFile, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgFile, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := server.New(ctx, cfg, server.Options{Stdout: io.Discard, Stderr: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done })

	vars := map[string]string{}
	expect := 0
	ran := 0
	for _, cmd := range script {
		if m := arrow.FindStringSubmatch(cmd); m != nil {
			expect, _ = strconv.Atoi(m[1])
			continue
		}
		if strings.HasPrefix(cmd, "#") {
			continue
		}
		cmd = strings.ReplaceAll(cmd, "127.0.0.1:8080", addr)
		switch {
		case tokenLine.MatchString(cmd):
			m := tokenLine.FindStringSubmatch(cmd)
			args := append(shellWords(t, m[2]), "--config", cfgFile)
			var out, errb bytes.Buffer
			if code := Main(args, nil, &out, &errb); code != 0 {
				t.Fatalf("%s: exit %d: %s", cmd, code, errb.String())
			}
			vars[m[1]] = strings.TrimSpace(out.String())
		case strings.HasPrefix(cmd, "curl "):
			words := shellWords(t, strings.TrimPrefix(cmd, "curl "))
			req, err := http.NewRequest(http.MethodGet, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(words); i++ {
				switch w := words[i]; {
				case w == "-s":
				case w == "-d":
					i++
					req.Method = http.MethodPost
					req.Body = io.NopCloser(strings.NewReader(words[i]))
				case w == "-H":
					i++
					k, v, _ := strings.Cut(words[i], ": ")
					req.Header.Set(k, os.Expand(v, func(n string) string { return vars[n] }))
				default:
					u, err := req.URL.Parse(w)
					if err != nil {
						t.Fatal(err)
					}
					req.URL = u
					req.Host = u.Host
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if expect == 0 {
				t.Fatalf("README: no '-> status' comment before %q", cmd)
			}
			if resp.StatusCode != expect {
				t.Fatalf("README promises %d for\n  %s\ngot %d: %s", expect, cmd, resp.StatusCode, body)
			}
			if expect == 200 && strings.Contains(cmd, "passport-UKR") && !bytes.Contains(body, []byte(`"total":3`)) {
				t.Fatalf("README promises total 3 for the passport search: %s", body)
			}
			if expect == 200 && strings.Contains(cmd, "$match") && !bytes.Contains(body, []byte(`"valueCode":"certain"`)) {
				t.Fatalf("README promises certain candidates for the match: %s", body)
			}
			expect = 0
			ran++
		case strings.HasPrefix(cmd, "./bin/mhg stats "):
			words := shellWords(t, strings.TrimPrefix(cmd, "./bin/mhg "))
			for i, w := range words {
				words[i] = os.Expand(w, func(n string) string { return vars[n] })
			}
			var out, errb bytes.Buffer
			if code := Main(append(words, "--url", "http://"+addr+"/fhir"), nil, &out, &errb); code != 0 {
				t.Fatalf("%s: exit %d: %s", cmd, code, errb.String())
			}
			if !strings.Contains(out.String(), stats.MaskedText) || !strings.Contains(out.String(), "initial-population") {
				t.Fatalf("%s: no table with masked cells:\n%s", cmd, out.String())
			}
			ran++
		case strings.HasPrefix(cmd, "./bin/mhg audit verify "):
			var out, errb bytes.Buffer
			if code := Main([]string{"audit", "verify", auditLog}, nil, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "OK") {
				t.Fatalf("audit verify: exit %d: %s %s", code, out.String(), errb.String())
			}
			ran++
		default:
			t.Fatalf("README walk-through has a line this test does not know: %q", cmd)
		}
	}
	if ran < 8 {
		t.Fatalf("only %d commands replayed; the walk-through changed shape", ran)
	}
}

var (
	arrow     = regexp.MustCompile(`^#.*->\s*(\d{3})\b`)
	tokenLine = regexp.MustCompile(`^([A-Z_]+)=\$\(\./bin/mhg (token .*)\)$`)
)

// walkthrough returns the commands of the README's walk-through: the
// first sh block after its heading, continuation lines joined; comments
// are kept (they carry the expected statuses).
func walkthrough(t *testing.T, readme string) []string {
	t.Helper()
	_, after, ok := strings.Cut(readme, "## A walk through the API")
	if !ok {
		t.Fatal("README has no walk-through section")
	}
	_, block, ok := strings.Cut(after, "```sh\n")
	if !ok {
		t.Fatal("walk-through has no sh block")
	}
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	cur := ""
	for _, line := range strings.Split(block, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if strings.HasPrefix(line, "#") && cur == "" {
			cmds = append(cmds, line)
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		cmds = append(cmds, strings.Join(strings.Fields(cur+line), " "))
		cur = ""
	}
	return cmds
}

// shellWords splits the simple shell words the walk-through uses: bare
// words and single- or double-quoted ones.
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		switch s[0] {
		case '\'', '"':
			end := strings.IndexByte(s[1:], s[0])
			if end < 0 {
				t.Fatalf("unterminated quote in %q", s)
			}
			out = append(out, s[1:end+1])
			s = s[end+2:]
		default:
			end := strings.IndexAny(s, " \t")
			if end < 0 {
				end = len(s)
			}
			out = append(out, s[:end])
			s = s[end:]
		}
	}
	return out
}
