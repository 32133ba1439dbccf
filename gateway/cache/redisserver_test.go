package cache

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServer is a redis-server child process owned by the tests: no
// persistence, loopback only, killed with the test binary.
type redisServer struct {
	bin     string
	port    int
	dir     string
	cluster bool
	cmd     *exec.Cmd
}

// errNoRedisServer explains what CI and developers must install.
var errNoRedisServer = errors.New("redis-server not found on PATH: the cache tests need a real Redis 7+; " +
	"install it (apt-get install redis-server) or set REDIS_URL")

// startRedis starts a redis-server on a free loopback port (or port, when
// not zero), in cluster mode with all slots on this one node when cluster
// is set.
func startRedis(dir string, port int, cluster bool) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errNoRedisServer
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &redisServer{bin: bin, port: port, dir: dir, cluster: cluster}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *redisServer) addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }
func (s *redisServer) url() string  { return "redis://" + s.addr() + "/0" }

func (s *redisServer) start() error {
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--loglevel", "warning", "--logfile", ""}
	if s.cluster {
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", fmt.Sprintf("nodes-%d.conf", s.port))
	}
	cmd := exec.Command(s.bin, args...)
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	s.cmd = cmd
	deadline := time.Now().Add(10 * time.Second)
	for {
		if reply, err := s.do("PING"); err == nil && reply == "+PONG" {
			break
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer PING", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !s.cluster {
		return nil
	}
	// One node that owns every slot is a complete cluster: enough to prove
	// the store never sends multi-key commands across slots.
	if reply, err := s.do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || reply != "+OK" {
		// A restart reads the slots back from nodes.conf.
		if !strings.Contains(reply, "already busy") {
			s.kill()
			return fmt.Errorf("cluster addslots: %q %v", reply, err)
		}
	}
	for {
		if info, err := s.do("CLUSTER", "INFO"); err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return errors.New("redis cluster did not reach state ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// do sends one inline command and returns the first reply line (bulk
// replies: the whole payload).
func (s *redisServer) do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "$") {
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return line, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}

// kill stops the server at once, as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// sharedRedis is the server TestMain started (or REDIS_URL) for the tests
// that do not need to kill theirs.
var sharedRedis struct {
	url string
	srv *redisServer
	err error
	dir string
}

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests cause many on purpose.
	redis.SetLogger(quietLogger{})
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mhg-cache-redis-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	sharedRedis.dir = dir
	if u := os.Getenv("REDIS_URL"); u != "" {
		sharedRedis.url = u
	} else if srv, err := startRedis(dir, 0, false); err != nil {
		sharedRedis.err = err
	} else {
		sharedRedis.srv, sharedRedis.url = srv, srv.url()
		defer srv.kill()
	}
	return m.Run()
}

// needRedisURL returns the shared Redis or fails the test: CI provides
// redis-server, so its absence is a failure, not a skip.
func needRedisURL(tb testing.TB) string {
	tb.Helper()
	if sharedRedis.err != nil {
		tb.Fatalf("shared Redis: %v", sharedRedis.err)
	}
	return sharedRedis.url
}

// ownRedis starts a redis-server for one test, killed at cleanup.
func ownRedis(tb testing.TB, cluster bool) *redisServer {
	tb.Helper()
	srv, err := startRedis(tb.TempDir(), 0, cluster)
	if err != nil {
		tb.Fatalf("own Redis: %v", err)
	}
	tb.Cleanup(srv.kill)
	return srv
}
