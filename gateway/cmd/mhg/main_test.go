package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/internal/mhgbin"
)

// mhgBinary is the mhg binary built once for the tests of this package.
var mhgBinary string

func TestMain(m *testing.M) { mhgbin.Main(m, &mhgBinary) }

// serve runs `mhg serve` in dir with env added to a clean MHG_*-free
// environment and returns its exit code and stderr. It is killed after
// timeout (a start-up error must end it long before).
func serve(t *testing.T, dir string, timeout time.Duration, env ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, mhgBinary, "serve")
	cmd.Dir = dir
	cmd.Env = append(mhgbin.Env(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("mhg serve did not exit within %s: %s", timeout, stderr.String())
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// errorLines returns the lines of stderr that are not structured log
// lines: what the command itself said.
func errorLines(stderr string) []string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if l != "" && !strings.HasPrefix(l, "{") {
			out = append(out, l)
		}
	}
	return out
}

// TestServeStartupErrors: every broken setting ends `mhg serve` with exit
// status 1 and one line naming the setting and the cause, never a panic.
func TestServeStartupErrors(t *testing.T) {
	t.Parallel()
	tampered := t.TempDir()
	writeTamperedLog(t, filepath.Join(tampered, ".mhg", "audit.jsonl"))
	notADir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notADir, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		dir  string
		env  []string
		want []string // every one must be on the line
	}{
		{"audit log cannot be created", t.TempDir(), []string{"MHG_AUDIT_LOG=" + filepath.Join(notADir, "audit.jsonl")},
			[]string{"audit.log", notADir, "not a directory"}},
		{"policy directory missing", t.TempDir(), []string{"MHG_POLICY_DIR=/nonexistent/policies"},
			[]string{"policy.dir", "/nonexistent/policies", "no such file or directory"}},
		{"tampered audit log", tampered, nil,
			[]string{"audit.log", ".mhg/audit.jsonl", "hash chain", "mhg audit verify"}},
		{"listen address taken", t.TempDir(), []string{"MHG_LISTEN=" + busyAddr(t)},
			[]string{"listen", "address already in use"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"MHG_LISTEN=" + freeAddr(t)}, tc.env...)
			code, stderr := serve(t, tc.dir, time.Minute, env...)
			checkOneLine(t, code, stderr, tc.want)
		})
	}
}

// TestServeAuditLogInUse: a second gateway started in the working
// directory of a running one is told which process holds the audit log.
func TestServeAuditLogInUse(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := startServe(t, dir, "MHG_LISTEN="+freeAddr(t))
	code, stderr := serve(t, dir, time.Minute, "MHG_LISTEN="+freeAddr(t))
	checkOneLine(t, code, stderr, []string{"audit.log", ".mhg/audit.jsonl", "in use by another mhg process",
		fmt.Sprintf("pid %d", first.cmd.Process.Pid), "MHG_AUDIT_LOG"})
}

// running is a gateway process started by startServe.
type running struct {
	cmd   *exec.Cmd
	token string // the banner's token
	base  string // http://host:port
}

// startServe starts `mhg serve` in dir and waits for its banner.
func startServe(t *testing.T, dir string, env ...string) *running {
	t.Helper()
	cmd := exec.Command(mhgBinary, "serve")
	cmd.Dir = dir
	cmd.Env = append(mhgbin.Env(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	r := &running{cmd: cmd}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			// mhg ... serving FHIR R4 at URL (listening on ADDR; traces: X)
			if _, rest, ok := strings.Cut(line, "(listening on "); ok && r.base == "" {
				addr, _, _ := strings.Cut(strings.TrimSuffix(rest, ")"), ";")
				r.base = "http://" + addr
			}
			if tok, ok := strings.CutPrefix(line, "TOKEN="); ok {
				r.token = tok
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(time.Minute):
		t.Fatal("the gateway did not start")
	}
	return r
}

func checkOneLine(t *testing.T, code int, stderr string, want []string) {
	t.Helper()
	if strings.Contains(stderr, "panic:") || strings.Contains(stderr, "goroutine ") {
		t.Fatalf("start-up panicked:\n%s", stderr)
	}
	if code != 1 {
		t.Fatalf("exit status %d, want 1:\n%s", code, stderr)
	}
	lines := errorLines(stderr)
	if len(lines) != 1 {
		t.Fatalf("want one line saying what is wrong, got %d:\n%s", len(lines), stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Fatalf("the line does not say %q:\n%s", w, lines[0])
		}
	}
}

// busyAddr returns an address a listener of this test holds.
func busyAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String()
}

// writeTamperedLog writes a one-record audit log whose record was edited
// after it was sealed.
func writeTamperedLog(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	line := `{"seq":1,"time":"2026-01-01T00:00:00.000000000Z","prev":"","hash":"` + strings.Repeat("0", 64) +
		`","event":{"resourceType":"AuditEvent"}}` + "\n"
	if err := os.WriteFile(path, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestMakeRunSaysTheFirstBuildIsSlow: `make run` says, before it compiles,
// that the first build takes minutes, so a newcomer does not think it hung.
func TestMakeRunSaysTheFirstBuildIsSlow(t *testing.T) {
	t.Parallel()
	mk, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make is not installed")
	}
	out, err := exec.Command(mk, "-n", "-C", filepath.Join("..", "..", ".."), "run").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n run: %v\n%s", err, out)
	}
	text := string(out)
	say := strings.Index(text, "first build")
	build := strings.Index(text, " build -trimpath")
	if say < 0 || build < 0 || say > build {
		t.Fatalf("make run does not say the first build is slow before building:\n%s", text)
	}
}
