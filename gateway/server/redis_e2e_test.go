package server

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/migrant-health/mhg/gateway/config"
)

// keyedHash is a keyed hash as the cache writes it in Redis names.
var keyedHash = regexp.MustCompile(`[0-9a-f]{64}`)

// TestRedisCache runs the gateway on a real redis-server: a session fills
// the cache, nothing in Redis is readable patient data, a killed Redis
// costs no request, and a restarted one is used again.
func TestRedisCache(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a redis-server")
	}
	rs := startRedis(t)
	de, nl, _, edit := nationalSources(t)
	g := startGateway(t, func(c *config.Config) {
		edit(c)
		c.Cache.Disabled = false
		c.Redis.URL = rs.URL()
		c.Redis.Timeout = 100 * time.Millisecond
	}, Options{})
	clin := g.token(t, "DE", "clinician", "TREAT")
	session := func() []string {
		r := g.get(t, "/Patient?identifier="+aminaPassport, clin)
		if r.status != 200 || len(r.entries("match")) != 2 {
			t.Fatalf("search %d %s", r.status, r.body)
		}
		var ids []string
		for _, p := range r.entries("match") {
			id := p["id"].(string)
			ids = append(ids, id)
			for _, path := range []string{"/Patient/" + id, "/Condition?patient=" + id, "/Immunization?patient=" + id} {
				if r := g.get(t, path, clin); r.status != 200 {
					t.Fatalf("%s: %d %s", path, r.status, r.body)
				}
			}
		}
		return ids
	}
	ids := session()
	calls := de.requests.Load() + nl.requests.Load()
	session()
	if now := de.requests.Load() + nl.requests.Load(); now != calls {
		t.Fatalf("the second session reached the sources %d times: Redis was not used", now-calls)
	}

	// Every key and value in Redis, scanned for the patients' data.
	ctx := context.Background()
	opts, _ := redis.ParseURL(rs.URL())
	client := redis.NewClient(opts)
	defer client.Close()
	keys, err := client.Keys(ctx, "*").Result()
	if err != nil || len(keys) < 5 {
		t.Fatalf("keys: %v %d", err, len(keys))
	}
	needles := append(fixtureNeedles(t), ids...)
	for _, k := range keys {
		var values []string
		switch typ, _ := client.Type(ctx, k).Result(); typ {
		case "string":
			v, _ := client.Get(ctx, k).Result()
			values = []string{v}
		case "set":
			values, _ = client.SMembers(ctx, k).Result()
		case "zset":
			values, _ = client.ZRange(ctx, k, 0, -1).Result()
		}
		for _, text := range append(values, k) {
			// A keyed hash in a name or a tag's member list is 64 hex
			// digits drawn at random: one may contain a year or a short
			// number by chance, which is not the data in clear.
			low := strings.ToLower(keyedHash.ReplaceAllString(text, "#"))
			for _, n := range needles {
				if len(n) >= 4 && strings.Contains(low, strings.ToLower(n)) {
					t.Fatalf("Redis key %q holds %q in clear", k, n)
				}
			}
		}
	}

	// Redis dies: every request still answers, from the sources.
	rs.Kill()
	session()
	if r := g.get(t, "http://"+g.cfg.Listen+"/readyz", ""); r.status != 200 || r.json["status"] != "degraded" {
		t.Fatalf("readyz without Redis: %d %s", r.status, r.body)
	}
	// Redis comes back: the cache is used again.
	if err := rs.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		session()
		before := de.requests.Load() + nl.requests.Load()
		session()
		if de.requests.Load()+nl.requests.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cache was not used again after Redis came back")
		}
		time.Sleep(500 * time.Millisecond)
	}
}
