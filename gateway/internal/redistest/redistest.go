// Package redistest starts real redis-server processes for tests: on a free
// loopback port, without persistence, in cluster mode when asked, killed
// with the test (and with the test binary, on Linux). It is the one
// launcher the cache, audit and server tests share. A missing
// redis-server is a test failure, not a skip: CI (.ci/run) installs it.
package redistest

import (
	"bufio"
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
)

// ErrNoRedisServer explains what CI and developers must install.
var ErrNoRedisServer = errors.New("redis-server not found on PATH: the tests need a real Redis 7+; " +
	"install it (apt-get install redis-server; .ci/run does) or set REDIS_URL")

// Server is a redis-server child process owned by the tests.
type Server struct {
	bin     string
	port    int
	dir     string
	cluster bool
	cmd     *exec.Cmd
}

// New starts a redis-server on a free loopback port (or port, when not
// zero) with its files in dir, in cluster mode with every slot on this one
// node when cluster is set. The caller kills it (TestMain, say); Start is
// the per-test form.
func New(dir string, port int, cluster bool) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, ErrNoRedisServer
	}
	if port == 0 {
		if port, err = freePort(); err != nil {
			return nil, err
		}
	}
	s := &Server{bin: bin, port: port, dir: dir, cluster: cluster}
	if err := s.Start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Run starts a redis-server for one test, killed at its cleanup.
func Run(tb testing.TB, cluster bool) *Server {
	tb.Helper()
	s, err := New(tb.TempDir(), 0, cluster)
	if err != nil {
		tb.Fatalf("redis-server: %v", err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// URL returns REDIS_URL when set, else the URL of a redis-server of the
// test's own.
func URL(tb testing.TB) string {
	tb.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return u
	}
	return Run(tb, false).URL()
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is the server's redis:// URL, database 0.
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Start (re)starts the process on the same port and directory, and waits
// until it answers (and, in cluster mode, until the cluster is ok).
func (s *Server) Start() error {
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
		if reply, err := s.Do("PING"); err == nil && reply == "+PONG" {
			break
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redis-server on port %d did not answer PING", s.port)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !s.cluster {
		return nil
	}
	// One node that owns every slot is a complete cluster: enough to prove
	// a client never sends multi-key commands across slots.
	if reply, err := s.Do("CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil || reply != "+OK" {
		// A restart reads the slots back from nodes.conf.
		if !strings.Contains(reply, "already busy") {
			s.Kill()
			return fmt.Errorf("cluster addslots: %q %v", reply, err)
		}
	}
	for {
		if info, err := s.Do("CLUSTER", "INFO"); err == nil && strings.Contains(info, "cluster_state:ok") {
			return nil
		}
		if time.Now().After(deadline) {
			s.Kill()
			return errors.New("redis cluster did not reach state ok")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Do sends one command and returns the first reply line (bulk replies:
// the whole payload).
func (s *Server) Do(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr(), time.Second)
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

// Kill stops the server at once, as a crash would.
func (s *Server) Kill() {
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
