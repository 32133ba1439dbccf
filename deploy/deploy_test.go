package deploy

import (
	"bytes"
	"errors"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/migrant-health/mhg/gateway/config"
	"github.com/migrant-health/mhg/gateway/telemetry"
)

// docs parses every YAML document of a file, strictly (yaml.v3 refuses
// duplicate keys), into generic maps.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

func doc(t *testing.T, path string) map[string]any {
	t.Helper()
	d := docs(t, path)
	if len(d) != 1 {
		t.Fatalf("%s: %d documents, want 1", path, len(d))
	}
	return d[0]
}

// get walks a path of map keys and list indexes ("spec", "template", 0).
func get(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("at %v: not a map: %v", path, v)
			}
			v, ok = m[k]
			if !ok {
				t.Fatalf("at %v: no key %q", path, k)
			}
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				t.Fatalf("at %v: not a list with index %d: %v", path, k, v)
			}
			v = l[k]
		}
	}
	return v
}

func str(t *testing.T, v any, path ...any) string {
	t.Helper()
	s, ok := get(t, v, path...).(string)
	if !ok {
		t.Fatalf("at %v: not a string", path)
	}
	return s
}

func TestEveryYAMLFileParses(t *testing.T) {
	var files []string
	err := filepath.WalkDir(".", func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 9 {
		t.Fatalf("found %d YAML files, want compose, collector and the kustomize base: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(f, func(t *testing.T) {
			if len(docs(t, f)) == 0 {
				t.Errorf("%s holds no document", f)
			}
		})
	}
}

func TestCollectorIsASecondPHIGuard(t *testing.T) {
	c := doc(t, "otel-collector.yaml")
	allowed := map[string]bool{}
	var want []string
	for _, k := range telemetry.AllowedKeys() {
		allowed[string(k)] = true
		want = append(want, string(k))
	}
	sort.Strings(want)

	// Both keep_keys lists equal the gateway's allow-list.
	stmts := get(t, c, "processors", "transform/allowlist", "trace_statements").([]any)
	contexts := map[string]bool{}
	reKeep := regexp.MustCompile(`^keep_keys\(attributes, \[(.*)\]\)$`)
	for _, s := range stmts {
		ctx := str(t, s, "context")
		contexts[ctx] = true
		found := false
		for _, st := range get(t, s, "statements").([]any) {
			m := reKeep.FindStringSubmatch(strings.TrimSpace(st.(string)))
			if m == nil {
				continue
			}
			found = true
			var got []string
			for _, k := range strings.Split(m[1], ",") {
				got = append(got, strings.Trim(strings.TrimSpace(k), `"`))
			}
			sort.Strings(got)
			if !slices.Equal(got, want) {
				t.Errorf("%s keep_keys differs from telemetry.AllowedKeys() (go run ./deploy/collectorkeys prints it):\n got %v\nwant %v", ctx, got, want)
			}
		}
		if !found {
			t.Errorf("context %s has no keep_keys statement", ctx)
		}
	}
	if !contexts["span"] || !contexts["spanevent"] {
		t.Errorf("transform/allowlist covers %v, want span and spanevent", contexts)
	}

	// The delete list names only keys the allow-list refuses too.
	for _, a := range get(t, c, "processors", "attributes/phi", "actions").([]any) {
		m := a.(map[string]any)
		if m["action"] != "delete" {
			t.Errorf("attributes/phi action %v, want delete", m)
		}
		if k, ok := m["key"].(string); ok && allowed[k] {
			t.Errorf("attributes/phi deletes %q, which the gateway allows", k)
		}
	}

	// The pipeline uses both guards, and only defined components.
	p := get(t, c, "service", "pipelines", "traces").(map[string]any)
	procs := p["processors"].([]any)
	for _, need := range []string{"attributes/phi", "transform/allowlist"} {
		if !slices.Contains(procs, any(need)) {
			t.Errorf("traces pipeline lacks %s: %v", need, procs)
		}
	}
	for section, names := range map[string][]any{"receivers": p["receivers"].([]any), "processors": procs, "exporters": p["exporters"].([]any)} {
		defined := get(t, c, section).(map[string]any)
		for _, n := range names {
			if _, ok := defined[n.(string)]; !ok {
				t.Errorf("pipeline uses %s %v, which is not defined", section, n)
			}
		}
	}
	if ep := str(t, c, "exporters", "otlp/jaeger", "endpoint"); ep != "jaeger:4317" {
		t.Errorf("jaeger exporter endpoint %q, want jaeger:4317 (the compose service)", ep)
	}
	for _, proto := range []string{"grpc", "http"} {
		get(t, c, "receivers", "otlp", "protocols", proto, "endpoint")
	}
}

func TestCompose(t *testing.T) {
	c := doc(t, "compose.yaml")
	services := get(t, c, "services").(map[string]any)
	for _, s := range []string{"gateway", "gateway-2", "lb", "postgres", "redis", "otel-collector", "jaeger"} {
		if _, ok := services[s]; !ok {
			t.Fatalf("compose lacks service %s", s)
		}
	}
	for name, svc := range services {
		if deps, ok := svc.(map[string]any)["depends_on"]; ok {
			var list []string
			switch d := deps.(type) {
			case []any:
				for _, x := range d {
					list = append(list, x.(string))
				}
			case map[string]any:
				for k := range d {
					list = append(list, k)
				}
			}
			for _, dep := range list {
				if _, ok := services[dep]; !ok {
					t.Errorf("%s depends on unknown service %s", name, dep)
				}
			}
		}
	}

	// Jaeger's UI is published and it accepts OTLP.
	if !slices.Contains(get(t, c, "services", "jaeger", "ports").([]any), any("16686:16686")) {
		t.Error("jaeger does not publish its UI on 16686")
	}
	if str(t, c, "services", "jaeger", "environment", "COLLECTOR_OTLP_ENABLED") != "true" {
		t.Error("jaeger does not accept OTLP")
	}

	// The collector mounts this directory's config.
	vol := str(t, c, "services", "otel-collector", "volumes", 0)
	src, dst, _ := strings.Cut(vol, ":")
	if _, err := os.Stat(src); err != nil {
		t.Errorf("collector volume source %s: %v", src, err)
	}
	if !strings.Contains(str(t, c, "services", "otel-collector", "command", 0), strings.TrimSuffix(dst, ":ro")) {
		t.Errorf("collector command does not read the mounted %s", dst)
	}

	// The gateway builds from the repository root with this Dockerfile.
	ctx := str(t, c, "services", "gateway", "build", "context")
	df := str(t, c, "services", "gateway", "build", "dockerfile")
	if _, err := os.Stat(filepath.Join(ctx, df)); err != nil {
		t.Errorf("gateway build: %v", err)
	}
	if _, err := os.Stat(filepath.Join(ctx, "go.mod")); err != nil {
		t.Errorf("gateway build context is not the module root: %v", err)
	}

	// Its environment is a valid configuration with the services wired.
	envMap := get(t, c, "services", "gateway", "environment").(map[string]any)
	var environ []string
	for k, v := range envMap {
		environ = append(environ, k+"="+v.(string))
	}
	cfg, err := config.Load("", environ)
	if err != nil {
		t.Fatalf("compose environment is not a valid config: %v", err)
	}
	if cfg.Listen != "0.0.0.0:8080" {
		t.Errorf("listen %q: the gateway would not be reachable from outside its container", cfg.Listen)
	}
	host := func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%q: %v", raw, err)
		}
		return u.Hostname()
	}
	if h := host(cfg.Redis.URL); services[h] == nil {
		t.Errorf("redis url host %q is not a compose service", h)
	}
	if cfg.Audit.Log == "" || cfg.Audit.DatabaseURL == "" || cfg.Audit.CheckpointKeyFile == "" {
		t.Errorf("audit config %+v, want a spool file, a repository and a checkpoint key", cfg.Audit)
	}
	if h := host(cfg.Audit.DatabaseURL); services[h] == nil {
		t.Errorf("audit database host %q is not a compose service", h)
	}
	// Both replicas share the environment but not their instance name or
	// their spool volume.
	env2 := get(t, c, "services", "gateway-2", "environment").(map[string]any)
	if env2["MHG_AUDIT_INSTANCE"] == envMap["MHG_AUDIT_INSTANCE"] || env2["MHG_AUDIT_DATABASE_URL"] != envMap["MHG_AUDIT_DATABASE_URL"] {
		t.Error("the replicas must share the repository and differ in audit instance")
	}
	if str(t, c, "services", "gateway-2", "volumes", 0) == str(t, c, "services", "gateway", "volumes", 0) {
		t.Error("the replicas share a spool volume")
	}
	// nginx balances over both replicas.
	lbVol := str(t, c, "services", "lb", "volumes", 0)
	conf, err := os.ReadFile(strings.SplitN(lbVol, ":", 2)[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []string{"gateway:8080", "gateway-2:8080"} {
		if !strings.Contains(string(conf), "server "+g) {
			t.Errorf("nginx.conf does not balance over %s", g)
		}
	}
	if envMap["OTEL_TRACES_EXPORTER"] != "otlp" {
		t.Errorf("OTEL_TRACES_EXPORTER = %v, want otlp", envMap["OTEL_TRACES_EXPORTER"])
	}
	if h := host(envMap["OTEL_EXPORTER_OTLP_ENDPOINT"].(string)); services[h] == nil {
		t.Errorf("OTLP endpoint host %q is not a compose service", h)
	}
	if _, mount, _ := strings.Cut(str(t, c, "services", "gateway", "volumes", 0), ":"); !strings.HasPrefix(cfg.Audit.Log, mount) {
		t.Errorf("audit log %s is not on the gateway's volume", cfg.Audit.Log)
	}
}

func TestDockerfile(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms, users []string
	var entrypoint, cmd, expose string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "FROM":
			froms = append(froms, f[1])
		case "USER":
			users = append(users, f[1])
		case "ENTRYPOINT":
			entrypoint = strings.Join(f[1:], " ")
		case "CMD":
			cmd = strings.Join(f[1:], " ")
		case "EXPOSE":
			expose = f[1]
		}
	}
	if len(froms) < 2 {
		t.Errorf("FROM %v: want a multi-stage build", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless") && !strings.Contains(last, "slim") {
		t.Errorf("runtime image %s: want distroless or debian-slim", last)
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "0") || strings.HasPrefix(users[len(users)-1], "root") {
		t.Errorf("USER %v: want a non-root user last", users)
	}
	if !strings.Contains(string(b), "./gateway/cmd/mhg") {
		t.Error("the Dockerfile does not build ./gateway/cmd/mhg")
	}
	if !strings.Contains(entrypoint, "mhg") || !strings.Contains(cmd, "serve") {
		t.Errorf("ENTRYPOINT %s CMD %s: want mhg serve", entrypoint, cmd)
	}
	if !strings.Contains(string(b), "MHG_LISTEN=0.0.0.0:"+expose) {
		t.Errorf("EXPOSE %s does not match MHG_LISTEN", expose)
	}
}

// kustomize reads the base: every resource listed, by kind/name.
func kustomize(t *testing.T) map[string]map[string]any {
	t.Helper()
	base := filepath.Join("k8s", "base")
	k := doc(t, filepath.Join(base, "kustomization.yaml"))
	if str(t, k, "kind") != "Kustomization" {
		t.Fatal("kustomization.yaml is not a Kustomization")
	}
	out := map[string]map[string]any{}
	for _, r := range get(t, k, "resources").([]any) {
		for _, d := range docs(t, filepath.Join(base, r.(string))) {
			out[str(t, d, "kind")+"/"+str(t, d, "metadata", "name")] = d
		}
	}
	return out
}

func TestKustomizeBase(t *testing.T) {
	res := kustomize(t)
	for _, want := range []string{"Deployment/mhg", "Service/mhg", "ConfigMap/mhg-config", "HorizontalPodAutoscaler/mhg",
		"PodDisruptionBudget/mhg", "Deployment/mhg-redis", "Service/mhg-redis", "Secret/mhg-audit-db-app"} {
		if res[want] == nil {
			t.Fatalf("the base lacks %s", want)
		}
	}
	dep := res["Deployment/mhg"]
	pod := get(t, dep, "spec", "template")
	podLabels := get(t, pod, "metadata", "labels").(map[string]any)
	c := get(t, pod, "spec", "containers", 0)

	// Probes on the gateway's health endpoints, on the container's port.
	port := str(t, c, "ports", 0, "name")
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"} {
		if got := str(t, c, probe, "httpGet", "path"); got != path {
			t.Errorf("%s path %s, want %s", probe, got, path)
		}
		if got := str(t, c, probe, "httpGet", "port"); got != port {
			t.Errorf("%s port %s, want %s", probe, got, port)
		}
	}
	if get(t, pod, "spec", "securityContext", "runAsNonRoot") != true || get(t, c, "securityContext", "readOnlyRootFilesystem") != true {
		t.Error("the gateway pod must run as non-root on a read-only root filesystem")
	}

	// The Service and the HPA point at the Deployment.
	for k, v := range get(t, res["Service/mhg"], "spec", "selector").(map[string]any) {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%v does not match the pod labels %v", k, v, podLabels)
		}
	}
	if str(t, res["Service/mhg"], "spec", "ports", 0, "targetPort") != port {
		t.Error("Service targetPort is not the container port")
	}
	hpa := res["HorizontalPodAutoscaler/mhg"]
	if str(t, hpa, "spec", "scaleTargetRef", "kind") != "Deployment" || str(t, hpa, "spec", "scaleTargetRef", "name") != "mhg" {
		t.Error("the HPA does not scale Deployment/mhg")
	}
	minR, maxR := get(t, hpa, "spec", "minReplicas").(int), get(t, hpa, "spec", "maxReplicas").(int)
	if minR < 2 || maxR <= minR {
		t.Errorf("HPA replicas %d..%d: want at least 2 and room to grow", minR, maxR)
	}
	if _, ok := get(t, c, "resources", "requests").(map[string]any)["cpu"]; !ok {
		t.Error("no CPU request: a CPU-utilisation HPA cannot work without one")
	}

	// The config the container reads is the ConfigMap's, and it is valid.
	args := get(t, c, "args").([]any)
	i := slices.Index(args, any("--config"))
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("args %v: no --config", args)
	}
	cfgPath := args[i+1].(string)
	var mounted bool
	for _, m := range get(t, c, "volumeMounts").([]any) {
		if str(t, m, "mountPath") == cfgPath && str(t, m, "name") == "config" {
			mounted = true
		}
	}
	if !mounted {
		t.Errorf("--config %s is not the ConfigMap mount", cfgPath)
	}
	body := str(t, res["ConfigMap/mhg-config"], "data", filepath.Base(cfgPath))
	f := filepath.Join(t.TempDir(), "mhg.yaml")
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	// The container's environment adds to it; the audit repository's URL
	// comes from a Secret of the base, never from the ConfigMap.
	var environ []string
	fromSecret := false
	for _, e := range get(t, c, "env").([]any) {
		name := str(t, e, "name")
		if v, ok := e.(map[string]any)["value"].(string); ok && !strings.Contains(v, "$(") {
			environ = append(environ, name+"="+v)
		}
		from, _ := e.(map[string]any)["valueFrom"].(map[string]any)
		if ref, ok := from["secretKeyRef"].(map[string]any); ok {
			sec := res["Secret/"+ref["name"].(string)]
			if sec == nil {
				t.Fatalf("env %s reads Secret %v, which the base lacks", name, ref["name"])
			}
			environ = append(environ, name+"="+str(t, sec, "stringData", ref["key"].(string)))
			fromSecret = fromSecret || name == "MHG_AUDIT_DATABASE_URL"
		}
	}
	if !fromSecret {
		t.Error("MHG_AUDIT_DATABASE_URL does not come from a Secret")
	}
	cfg, err := config.Load(f, environ)
	if err != nil {
		t.Fatalf("ConfigMap config: %v", err)
	}
	if cfg.Audit.DatabaseURL == "" || cfg.Audit.CheckpointKeyFile == "" || !strings.HasPrefix(cfg.Audit.CheckpointKeyFile, "/etc/mhg/keys/") {
		t.Errorf("audit: want a repository and a checkpoint key on the Secret mount, got %+v", cfg.Audit)
	}
	if get(t, res["PodDisruptionBudget/mhg"], "spec", "maxUnavailable") != 1 {
		t.Error("the PodDisruptionBudget must let at most one replica go at a time")
	}
	if cfg.Auth.Dev {
		t.Error("the base enables the development signing key")
	}
	if u, _ := url.Parse(cfg.Redis.URL); res["Service/"+u.Hostname()] == nil {
		t.Errorf("redis url %s does not name a Service of the base", cfg.Redis.URL)
	}
	for _, kf := range []string{cfg.Cache.KeyFile, cfg.IDs.KeyFile} {
		if !strings.HasPrefix(kf, "/etc/mhg/keys/") {
			t.Errorf("key file %q is not on the mhg-keys Secret mount", kf)
		}
	}
	if !strings.HasPrefix(cfg.Audit.Log, "/var/lib/mhg/") {
		t.Errorf("audit log %s is not on the writable data volume", cfg.Audit.Log)
	}
	grace := time.Duration(get(t, pod, "spec", "terminationGracePeriodSeconds").(int)) * time.Second
	if grace <= cfg.Server.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %s does not exceed the shutdown timeout %s", grace, cfg.Server.ShutdownTimeout)
	}
}
