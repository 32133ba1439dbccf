package scaleout

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/migrant-health/mhg/gateway/audit/repository"
	"github.com/migrant-health/mhg/gateway/auth"
	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/internal/mhgbin"
	"github.com/migrant-health/mhg/gateway/internal/pgtest"
	"github.com/migrant-health/mhg/gateway/internal/redistest"
	"github.com/migrant-health/mhg/gateway/server"
)

const passport = "http://hl7.org/fhir/sid/passport-UKR|FT482913"

var mhgBinary string

func TestMain(m *testing.M) { mhgbin.Main(m, &mhgBinary) }

// replica is one `mhg serve` process and its files.
type replica struct {
	name   string
	dir    string
	config string
	base   string // http://127.0.0.1:port
	cmd    *exec.Cmd
	done   chan struct{}
}

func (r *replica) start(t *testing.T) {
	t.Helper()
	cmd := exec.Command(mhgBinary, "serve", "--config", r.config)
	cmd.Dir = r.dir
	cmd.Env = mhgbin.Env()
	logf, err := os.OpenFile(filepath.Join(r.dir, "stderr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = io.Discard, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd, r.done = cmd, make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(r.done)
	}()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-r.done:
			b, _ := os.ReadFile(filepath.Join(r.dir, "stderr.log"))
			t.Fatalf("replica %s exited at start:\n%s", r.name, b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready: %v", r.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *replica) kill(sig syscall.Signal) {
	_ = r.cmd.Process.Signal(sig)
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// answer is one response the clients saw.
type answer struct {
	status int
	trace  string
}

func TestScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three gateways, a redis-server and a PostgreSQL cluster")
	}
	ctx := context.Background()
	redis := redistest.Run(t, false)
	pg := pgtest.StartCluster(t)
	db := pgtest.NewDatabase(t, pg.URL())

	shared := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(shared, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	idKey := make([]byte, 32)
	_, _ = rand.Read(idKey)
	keys, err := cache.GenerateKeys("k1")
	if err != nil {
		t.Fatal(err)
	}
	encoded, err := keys.Encode()
	if err != nil {
		t.Fatal(err)
	}
	skey, vkey, err := repository.GenerateKey("mhg-scaleout")
	if err != nil {
		t.Fatal(err)
	}
	idFile, cacheFile := write("ids.key", idKey, 0o600), write("cache.keys", encoded, 0o600)
	skeyFile, vkeyFile := write("checkpoint.key", []byte(skey), 0o600), write("checkpoint.pub", []byte(vkey), 0o644)

	const audience = "http://mhg.test/fhir"
	replicas := make([]*replica, 3)
	for i := range replicas {
		r := &replica{name: fmt.Sprintf("r%d", i+1), dir: t.TempDir()}
		port := freePort(t)
		r.base = "http://127.0.0.1:" + strconv.Itoa(port)
		yaml := fmt.Sprintf(`listen: 127.0.0.1:%d
public_url: %s
auth: {dev: true, dev_key_file: %s, audience: %s}
ids: {key_file: %s}
cache: {key_file: %s, local_ttl: 30s}
redis: {url: %s}
audit:
  log: %s
  database_url: %q
  instance: %s
  checkpoint_key_file: %s
  checkpoint_interval: 500ms
log: {level: warn}
console: {disabled: true}
`, port, audience, filepath.Join(shared, "dev-key.pem"), audience, idFile, cacheFile, redis.URL(),
			filepath.Join(r.dir, "audit.jsonl"), db, r.name, skeyFile)
		r.config = filepath.Join(r.dir, "mhg.yaml")
		if err := os.WriteFile(r.config, []byte(yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		replicas[i] = r
	}
	// The first replica writes the shared development signing key; the
	// others and the test's tokens use it.
	for _, r := range replicas {
		r.start(t)
		t.Cleanup(func() {
			if r.cmd.ProcessState == nil {
				r.kill(syscall.SIGKILL)
			}
		})
	}
	cfg, err := config.Load(replicas[0].config, nil)
	if err != nil {
		t.Fatal(err)
	}
	token := func(country, role, purpose string) string {
		tok, err := auth.Mint(server.AuthOptions(cfg.Auth), auth.MintOptions{Org: "org-" + strings.ToLower(country), Country: country, Role: role,
			Purpose: purpose, Scopes: []string{"system/*.rs"}, TTL: 30 * time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	clinician, foreign := token("DE", "clinician", "TREAT"), token("US", "clinician", "TREAT")
	auditor, admin := token("DE", "auditor", "HCOMPL"), token("DE", "admin", "HSYSADMIN")

	// The sample patient's gateway id, the same on every replica (shared
	// ids key).
	var pid string
	for _, r := range replicas {
		st, body, _ := do(t, "GET", r.base+"/fhir/Patient?identifier="+url.QueryEscape(passport), clinician)
		if st != 200 {
			t.Fatalf("%s: search %d %s", r.name, st, body)
		}
		id := firstSampleID(t, body)
		if pid != "" && id != pid {
			t.Fatalf("replicas disagree on the patient's id: %s, %s", pid, id)
		}
		pid = id
	}

	// Mixed load over the three replicas while one is killed and
	// restarted, and the database restarted.
	var (
		mu      sync.Mutex
		answers []answer
		refused atomic.Int64 // connection errors and 503s: no answer seen
		stop    atomic.Bool
		wg      sync.WaitGroup
	)
	requests := []struct {
		path, token string
	}{
		{"/fhir/Patient?identifier=" + url.QueryEscape(passport), clinician},
		{"/fhir/Patient/" + pid, foreign},
		{"/fhir/Patient/" + pid, clinician},
		{"/fhir/AuditEvent?_count=5", auditor},
	}
	const workers, perWorker = 6, 400
	for w := range workers {
		wg.Go(func() {
			for i := 0; i < perWorker && !stop.Load(); i++ {
				r := replicas[(w+i)%len(replicas)]
				q := requests[(w*7+i)%len(requests)]
				st, _, trace, err := get(r.base+q.path, q.token)
				if err != nil || st == 503 {
					refused.Add(1)
					time.Sleep(20 * time.Millisecond)
					continue
				}
				if st == 200 || st == 403 {
					mu.Lock()
					answers = append(answers, answer{st, trace})
					mu.Unlock()
				}
			}
		})
	}
	seen := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(answers)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(2 * time.Minute)
		for seen() < n && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(150)
	victim := replicas[1]
	victim.kill(syscall.SIGKILL)
	t.Logf("killed %s after %d answers", victim.name, seen())
	victim.start(t)
	waitFor(seen() + 150)
	t.Logf("restarting PostgreSQL after %d answers", seen())
	pg.Stop()
	waitFor(seen() + 100)
	pg.Start()
	waitFor(seen() + 150)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d answers (200/403), %d refused or unreachable", len(answers), refused.Load())
	if len(answers) < 400 {
		t.Fatalf("only %d answers", len(answers))
	}

	// Every replica ships what it holds.
	for _, r := range replicas {
		deadline := time.Now().Add(2 * time.Minute)
		for {
			st := readyz(t, r)
			if st.Shipping.Unshipped == 0 && st.Shipping.Shipped > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not ship its backlog: %+v", r.name, st)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Every replica names itself and enforces the same policy revision.
	var revision string
	for _, r := range replicas {
		st := readyz(t, r)
		if st.Instance != r.name || st.Revision == "" || (revision != "" && st.Revision != revision) {
			t.Fatalf("%s /readyz: instance %q, policy revision %q (others: %q)", r.name, st.Instance, st.Revision, revision)
		}
		revision = st.Revision
	}

	// Every 200 and 403 has exactly one AuditEvent.
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	traces := make([]string, len(answers))
	for i, a := range answers {
		traces[i] = a.trace
	}
	rows, err := conn.Query(ctx, `SELECT u.trace, count(a.id) FROM unnest($1::text[]) AS u(trace)
LEFT JOIN audit_records a ON a.trace_id = u.trace GROUP BY u.trace HAVING count(a.id) <> 1`, traces)
	if err != nil {
		t.Fatal(err)
	}
	bad, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (string, error) {
		var tr string
		var n int
		err := row.Scan(&tr, &n)
		return fmt.Sprintf("%s: %d", tr, n), err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) > 0 {
		t.Fatalf("%d of %d answers do not have exactly one AuditEvent: %v", len(bad), len(answers), bad[:min(len(bad), 10)])
	}
	var instances int
	if err := conn.QueryRow(ctx, `SELECT count(DISTINCT instance) FROM audit_records`).Scan(&instances); err != nil || instances != 3 {
		t.Fatalf("records from %d instances, %v", instances, err)
	}

	// An auditor's search answers the same on every replica.
	cutoff := time.Now().UTC().Truncate(time.Second)
	time.Sleep(1100 * time.Millisecond)
	var first []string
	for i, r := range replicas {
		st, body, _ := do(t, "GET", r.base+"/fhir/AuditEvent?_count=50&date=lt"+cutoff.Format(time.RFC3339), auditor)
		if st != 200 {
			t.Fatalf("%s: auditor search %d %s", r.name, st, body)
		}
		ids := bundleIDs(t, body)
		if i == 0 {
			first = ids
			if len(ids) != 50 {
				t.Fatalf("first page holds %d events", len(ids))
			}
			continue
		}
		if !slices.Equal(ids, first) {
			t.Fatalf("%s answers another page than %s", r.name, replicas[0].name)
		}
	}

	// A forget-patient sent to one replica empties what the others read.
	reader := replicas[1]
	do(t, "GET", replicas[0].base+"/fhir/Patient/"+pid, clinician)
	m0 := misses(t, reader)
	if st, _, _ := do(t, "GET", reader.base+"/fhir/Patient/"+pid, clinician); st != 200 {
		t.Fatalf("read on %s: %d", reader.name, st)
	}
	if m1 := misses(t, reader); m1 != m0 {
		t.Fatalf("%s missed the cache (%v -> %v) after another replica read the patient", reader.name, m0, m1)
	}
	if st, body, _ := do(t, "POST", replicas[2].base+"/admin/cache/$forget-patient?patient="+pid, admin); st != 200 {
		t.Fatalf("forget-patient: %d %s", st, body)
	}
	// The replicas keep in-process copies (cache.local_ttl 30s): only the
	// invalidation published through Redis makes the reader ask again.
	forgotten := time.Now()
	for {
		m2 := misses(t, reader)
		do(t, "GET", reader.base+"/fhir/Patient/"+pid, clinician)
		if misses(t, reader) > m2 {
			break
		}
		if time.Since(forgotten) > 20*time.Second {
			t.Fatalf("after forget-patient on %s, %s still reads the patient from its copy", replicas[2].name, reader.name)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("forget-patient on %s reached %s's copy within %v", replicas[2].name, reader.name, time.Since(forgotten))

	// Stopped cleanly, the replicas sign their last checkpoints; the
	// repository verifies.
	for _, r := range replicas {
		r.kill(syscall.SIGTERM)
	}
	out, err := exec.Command(mhgBinary, "audit", "verify", "--database", db, "--key", vkeyFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "OK: 3 instances") {
		t.Fatalf("mhg audit verify --database: %v\n%s", err, out)
	}
	t.Logf("verify: %s", strings.TrimSpace(string(out)))
}

func get(u, token string) (int, []byte, string, error) {
	req, err := http.NewRequest("GET", u, nil)
	if err != nil {
		return 0, nil, "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("X-Request-Id"), err
}

func do(t *testing.T, method, u, token string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header.Get("X-Request-Id")
}

func firstSampleID(t *testing.T, body []byte) string {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
			Search struct {
				Mode string `json:"mode"`
			} `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	for _, e := range b.Entry {
		if e.Search.Mode == "match" && strings.HasPrefix(e.Resource.ID, "de-sample.") {
			return e.Resource.ID
		}
	}
	t.Fatalf("no de-sample patient in %s", body)
	return ""
}

func bundleIDs(t *testing.T, body []byte) []string {
	t.Helper()
	var b struct {
		Entry []struct {
			Resource struct {
				ID string `json:"id"`
			} `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range b.Entry {
		ids = append(ids, e.Resource.ID)
	}
	return ids
}

type readiness struct {
	Status   string `json:"status"`
	Instance string `json:"instance"`
	Revision string `json:"policy_revision"`
	Shipping struct {
		Shipped   uint64 `json:"shipped_seq"`
		Unshipped uint64 `json:"unshipped"`
		Error     string `json:"error"`
	} `json:"audit_shipping"`
}

func readyz(t *testing.T, r *replica) readiness {
	t.Helper()
	resp, err := http.Get(r.base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st readiness
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// misses sums the replica's cache misses (mhg_cache_misses_total).
func misses(t *testing.T, r *replica) float64 {
	t.Helper()
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s /metrics: %d", r.name, resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "mhg_cache_misses_total") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
		}
	}
	return sum
}
