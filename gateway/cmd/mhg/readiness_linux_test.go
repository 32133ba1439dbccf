package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestReadinessFollowsAuditWrites: once the audit log stops taking writes
// (here the process's file-size limit, as a full disk would), the next
// /readyz says 503, and once writes work again it says 200 by itself, with
// no data request in between (a load balancer sends none to a replica it
// took out).
func TestReadinessFollowsAuditWrites(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	g := startServe(t, dir, "MHG_LISTEN="+freeAddr(t))
	pid := g.cmd.Process.Pid
	search := g.base + "/fhir/Patient?identifier=http://hl7.org/fhir/sid/passport-UKR%7CFT482913"

	if code := get(t, search, g.token); code != 200 {
		t.Fatalf("search: %d", code)
	}
	if code := get(t, g.base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz before the fault: %d", code)
	}
	info, err := os.Stat(filepath.Join(dir, ".mhg", "audit.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var was unix.Rlimit
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, nil, &was); err != nil {
		t.Skipf("cannot read the gateway's file-size limit: %v", err)
	}
	limited := unix.Rlimit{Cur: uint64(info.Size()), Max: was.Max}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &limited, nil); err != nil {
		t.Skipf("cannot set the gateway's file-size limit: %v", err)
	}

	if code := get(t, search, g.token); code != 503 {
		t.Fatalf("search with the audit log full: %d, want 503", code)
	}
	if code := get(t, g.base+"/readyz", ""); code != 503 {
		t.Fatalf("readyz right after a failed audit write: %d, want 503", code)
	}
	if code := get(t, g.base+"/readyz", ""); code != 503 {
		t.Fatalf("readyz while the audit log is still full: %d, want 503", code)
	}

	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &was, nil); err != nil {
		t.Fatal(err)
	}
	if code := get(t, g.base+"/readyz", ""); code != 200 {
		t.Fatalf("readyz once the audit log takes writes again: %d, want 200", code)
	}
	if code := get(t, search, g.token); code != 200 {
		t.Fatalf("search after recovery: %d", code)
	}
}

func get(t *testing.T, url, token string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}
