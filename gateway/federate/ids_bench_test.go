package federate

import (
	"strings"
	"testing"
	"time"

	"github.com/migrant-health/mhg/gateway/cache"
	"github.com/migrant-health/mhg/gateway/internal/redistest"
)

// BenchmarkIDs measures minting (Encode) and resolving (Decode) a gateway
// id: the sealed form of an id that fits (today's form, the baseline),
// and the digest form of a 64-character id with its table in-process and
// in Redis. Resolving a digest id another replica minted reads the table
// (memo miss); resolving one this replica minted reads its memo.
func BenchmarkIDs(b *testing.B) {
	key := []byte(strings.Repeat("k", 32))
	const source = "de-national-ehr1"
	short := "8de41d0d-0ae7-4cb6-97e2-900b07a1e4f7"
	long := strings.Repeat("0123456789abcdef", 4)

	mem, err := NewIDCodec(key)
	if err != nil {
		b.Fatal(err)
	}
	srv := redistest.Run(b, false)
	store, err := cache.NewRedisStore(cache.RedisOptions{URL: srv.URL(), Timeout: 2 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = store.Close() })
	red, err := NewIDCodecTable(key, IDTableOptions{Store: store})
	if err != nil {
		b.Fatal(err)
	}

	mint := func(c *IDCodec, id string) func(*testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Encode(source, "Condition", id); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	resolve := func(c *IDCodec, fresh func() *IDCodec, id string) func(*testing.B) {
		return func(b *testing.B) {
			gw, err := c.Encode(source, "Condition", id)
			if err != nil {
				b.Fatal(err)
			}
			r := c
			if fresh != nil {
				r = fresh()
			}
			b.ReportAllocs()
			for b.Loop() {
				if fresh != nil {
					// Every round a replica that has not seen the id.
					b.StopTimer()
					r = fresh()
					b.StartTimer()
				}
				if _, _, err := r.Decode("Condition", gw); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	freshRedis := func() *IDCodec {
		c, err := NewIDCodecTable(key, IDTableOptions{Store: store, MaxBytes: 1 << 20})
		if err != nil {
			b.Fatal(err)
		}
		return c
	}
	b.Run("mint/sealed-baseline", mint(mem, short))
	b.Run("mint/digest-memory", mint(mem, long))
	b.Run("mint/digest-redis", mint(red, long))
	b.Run("resolve/sealed-baseline", resolve(mem, nil, short))
	b.Run("resolve/digest-memory", resolve(mem, nil, long))
	b.Run("resolve/digest-redis-memo", resolve(red, nil, long))
	b.Run("resolve/digest-redis-other-replica", resolve(red, freshRedis, long))
}
