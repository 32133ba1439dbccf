package server

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisURL returns REDIS_URL when set, else the URL of a redis-server of
// the test's own (see startRedis).
func redisURL(t testing.TB) string {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return startRedis(t).url
}

// redisServer is a redis-server the test started on a free port.
type redisServer struct {
	url  string
	port int
	dir  string
	cmd  *exec.Cmd
}

// startRedis starts a redis-server on a free port, stopped at cleanup. A
// missing redis-server fails the test: CI installs it.
func startRedis(t testing.TB) *redisServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	rs := &redisServer{url: fmt.Sprintf("redis://127.0.0.1:%d/0", port), port: port, dir: t.TempDir()}
	rs.restart(t)
	t.Cleanup(func() { rs.stop(t) })
	return rs
}

func (rs *redisServer) restart(t testing.TB) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatal("redis-server is required (set REDIS_URL or install redis-server; .ci/run does)")
	}
	rs.cmd = exec.Command(bin, "--port", fmt.Sprint(rs.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", rs.dir)
	if err := rs.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	opts, _ := redis.ParseURL(rs.url)
	c := redis.NewClient(opts)
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); ; {
		if c.Ping(context.Background()).Err() == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rs *redisServer) stop(t testing.TB) {
	if rs.cmd != nil && rs.cmd.Process != nil {
		_ = rs.cmd.Process.Kill()
		_, _ = rs.cmd.Process.Wait()
		rs.cmd = nil
	}
}
