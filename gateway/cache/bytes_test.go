package cache

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

// A Bytes cache gives back what was set under a key, keeps no more bytes
// than its bound, and a nil one keeps nothing.
func TestBytes(t *testing.T) {
	v := bytes.Repeat([]byte("x"), 1000)
	c, err := NewBytes(int64(2*(len(v)+BytesOverhead)), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c.Set(sha256.Sum256([]byte("a")), v)
	if got, ok := c.Get(sha256.Sum256([]byte("a"))); !ok || !bytes.Equal(got, v) {
		t.Fatalf("Get after Set = %d bytes, %v", len(got), ok)
	}
	if _, ok := c.Get(sha256.Sum256([]byte("b"))); ok {
		t.Fatal("Get of a key never set found an entry")
	}
	for _, k := range []string{"b", "c", "d"} {
		c.Set(sha256.Sum256([]byte(k)), v)
	}
	if n := c.Len(); n > 2 {
		t.Fatalf("%d entries kept, the bound holds 2", n)
	}

	var none *Bytes
	none.Set(sha256.Sum256([]byte("a")), v)
	if _, ok := none.Get(sha256.Sum256([]byte("a"))); ok || none.Len() != 0 {
		t.Fatal("a nil cache kept an entry")
	}
}
