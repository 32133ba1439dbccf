package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Cluster is a private PostgreSQL server for one test, started with initdb
// and pg_ctl in a temporary directory on a free loopback port (trust
// authentication, fsync off), so a test may stop and restart it without
// touching the shared server. As root, it runs as the postgres user, which
// initdb requires.
type Cluster struct {
	bin  string // directory of initdb and pg_ctl
	dir  string
	port int
	cred *syscall.Credential
	tb   testing.TB
}

// StartCluster initialises and starts a private cluster, stopped at the
// test's cleanup.
func StartCluster(tb testing.TB) *Cluster {
	tb.Helper()
	bin, err := binDir()
	if err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	// Not t.TempDir: its parents are private to root, and the server may
	// run as postgres.
	dir, err := os.MkdirTemp("", "mhg-pgtest-")
	if err != nil {
		tb.Fatal(err)
	}
	c := &Cluster{bin: bin, dir: dir, tb: tb}
	tb.Cleanup(func() {
		c.pgCtl("stop", "-m", "immediate")
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			tb.Fatalf("pgtest: initdb refuses to run as root and there is no postgres user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
		if err := os.Chown(dir, uid, gid); err != nil {
			tb.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	c.port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if out, err := c.command(filepath.Join(bin, "initdb"), "-D", c.data(), "-U", "postgres", "-A", "trust",
		"-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		tb.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	c.Start()
	return c
}

func binDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	if len(matches) == 0 {
		return "", fmt.Errorf("initdb and pg_ctl not found (install postgresql; scripts/test-deps does)")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func (c *Cluster) data() string { return filepath.Join(c.dir, "data") }

func (c *Cluster) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Dir = c.dir
	if c.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	}
	return cmd
}

func (c *Cluster) pgCtl(args ...string) ([]byte, error) {
	args = append([]string{"-D", c.data(), "-w", "-t", "120"}, args...)
	return c.command(filepath.Join(c.bin, "pg_ctl"), args...).CombinedOutput()
}

// Start starts the server and waits until it takes connections.
func (c *Cluster) Start() {
	c.tb.Helper()
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", c.port, c.dir)
	if out, err := c.pgCtl("start", "-l", filepath.Join(c.dir, "log"), "-o", opts); err != nil {
		log, _ := os.ReadFile(filepath.Join(c.dir, "log"))
		c.tb.Fatalf("pgtest: pg_ctl start: %v\n%s\n%s", err, out, log)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, c.URL())
		if err == nil {
			conn.Close(ctx)
			return
		}
		if ctx.Err() != nil {
			c.tb.Fatalf("pgtest: the cluster does not take connections: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the server (fast shutdown: connections are cut).
func (c *Cluster) Stop() {
	c.tb.Helper()
	if out, err := c.pgCtl("stop", "-m", "fast"); err != nil {
		c.tb.Fatalf("pgtest: pg_ctl stop: %v\n%s", err, out)
	}
}

// Restart stops and starts the server.
func (c *Cluster) Restart() {
	c.tb.Helper()
	c.Stop()
	c.Start()
}

// URL is the server's URL (database postgres), for NewDatabase.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}
