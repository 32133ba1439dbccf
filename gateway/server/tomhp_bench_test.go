package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/config"
)

// childEnv makes the test binary run a bare gateway instead of the tests:
// BenchmarkToMHPMemory measures the memory of a process that does nothing
// else.
const childEnv = "MHG_BENCH_GATEWAY_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChildGateway())
	}
	os.Exit(m.Run())
}

// runChildGateway serves the embedded default, with $to-mhp bounds wide
// enough for the benchmark, prints "READY <base> <token>" and serves until
// its stdin closes.
func runChildGateway() int {
	dir, err := os.MkdirTemp("", "mhg-bench-child-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	base := "http://" + ln.Addr().String() + "/fhir"
	cfg := config.Default()
	cfg.Listen, cfg.PublicURL, cfg.Auth.Audience = ln.Addr().String(), base, base
	cfg.Auth.DevKeyFile = filepath.Join(dir, "key.pem")
	cfg.Audit.Log = filepath.Join(dir, "audit.jsonl")
	cfg.ToMHP = config.ToMHP{MaxBundleBytes: 64 << 20, MaxEntries: 1 << 20, MaxOutputBytes: 1 << 30, MaxConcurrent: 2, SpoolDir: dir}
	cfg.Server.WriteTimeout = 10 * time.Minute
	cfg.Server.ReadTimeout = 10 * time.Minute
	cfg.Log.Level = "error"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := New(ctx, cfg, Options{Stdout: io.Discard, Stderr: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	tok, err := auth.Mint(AuthOptions(cfg.Auth), auth.MintOptions{Org: "bench", Country: "DE", Role: "clinician", Purpose: "TREAT",
		Scopes: []string{"system/*.rs"}, TTL: time.Hour})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	fmt.Printf("READY %s %s\n", base, tok)
	_, _ = io.Copy(io.Discard, os.Stdin)
	cancel()
	<-done
	return 0
}

// BenchmarkToMHPMemory converts a 50 MiB national Bundle (de-basis, about
// 60,000 entries) in a gateway process of its own and reports the peak RSS
// of that process during the conversion against its steady-state RSS
// measured just before, after a warm-up (the baseline, from the same run).
// The peak must stay under twice the steady state.
func BenchmarkToMHPMemory(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads /proc/<pid>/status")
	}
	in := bigBundle(b, 50<<20)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("the gateway process did not start: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 || f[0] != "READY" {
		b.Fatalf("the gateway process said %q", line)
	}
	base, tok, pid := f[1], f[2], cmd.Process.Pid

	convert := func(body []byte) int64 {
		req, err := http.NewRequest(http.MethodPost, base+"/$to-mhp?profile=de-basis", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/fhir+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		n, _ := io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("$to-mhp: status %d", resp.StatusCode)
		}
		return n
	}
	// Warm-up: the mapping, policy and codec paths, then a few ordinary
	// requests, as a gateway in service would have seen them.
	small := bigBundle(b, 256<<10)
	for range 3 {
		convert(small)
	}
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	var steady, peak, out int64
	for range b.N {
		b.StopTimer()
		runtime.GC()
		time.Sleep(200 * time.Millisecond)
		steady = procStatus(b, pid, "VmRSS")
		// Reset the peak to the current RSS (Linux: clear_refs 5).
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0); err != nil {
			b.Skipf("cannot reset the peak RSS: %v", err)
		}
		b.StartTimer()
		out = convert(in)
		b.StopTimer()
		peak = procStatus(b, pid, "VmHWM")
		b.StartTimer()
	}
	ratio := float64(peak) / float64(steady)
	b.ReportMetric(float64(steady)/(1<<20), "steady-RSS-MiB")
	b.ReportMetric(float64(peak)/(1<<20), "peak-RSS-MiB")
	b.ReportMetric(ratio, "peak/steady")
	b.ReportMetric(float64(out)/(1<<20), "answer-MiB")
	if ratio >= 2 {
		b.Errorf("peak RSS %d MiB is %.2fx the steady state %d MiB; it must stay under 2x", peak>>20, ratio, steady>>20)
	}
}

// procStatus reads a memory line of /proc/<pid>/status, in bytes.
func procStatus(b *testing.B, pid int, field string) int64 {
	b.Helper()
	s, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB$`).FindSubmatch(s)
	if m == nil {
		b.Fatalf("no %s in /proc/%d/status", field, pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

var uuidPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// bigBundle builds a de-basis collection Bundle of at least size bytes
// from the German sample patients, copied with fresh ids (every uuid of a
// copy gets the copy's number), references between entries kept.
func bigBundle(b *testing.B, size int) []byte {
	b.Helper()
	dir := filepath.Join("..", "..", "conformance", "examples", "de-sample")
	var entries [][]byte
	for _, name := range []string{"amina.json", "hans.json", "kim.json", "tesfay.json", "yusuf.json"} {
		raw, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		var bun struct {
			Entry []json.RawMessage `json:"entry"`
		}
		if err := json.Unmarshal(raw, &bun); err != nil {
			b.Fatal(err)
		}
		for _, e := range bun.Entry {
			var c bytes.Buffer
			if err := json.Compact(&c, e); err != nil {
				b.Fatal(err)
			}
			entries = append(entries, c.Bytes())
		}
	}
	var out bytes.Buffer
	out.Grow(size + 64<<10)
	out.WriteString(`{"resourceType":"Bundle","type":"collection","entry":[`)
	for k := 0; out.Len() < size; k++ {
		prefix := []byte(fmt.Sprintf("%08x", k))
		for _, e := range entries {
			if k > 0 || out.Bytes()[out.Len()-1] != '[' {
				out.WriteByte(',')
			}
			out.Write(uuidPattern.ReplaceAllFunc(e, func(u []byte) []byte {
				return append(append([]byte{}, prefix...), u[8:]...)
			}))
		}
	}
	out.WriteString(`]}`)
	return out.Bytes()
}
