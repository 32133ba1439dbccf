// Package pgtest gives tests a database of their own on a real PostgreSQL:
// the local server (MHG_TEST_POSTGRES_URL, else postgres://postgres@
// 127.0.0.1:5432/test with trust authentication) or a private cluster
// started with initdb and pg_ctl in a temporary directory (Cluster), for
// tests that stop and restart the server. A PostgreSQL that cannot be
// reached is a test failure, not a skip: CI (.ci/run) provides one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// DefaultURL is the local server the tests use when MHG_TEST_POSTGRES_URL
// is not set.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// ServerURL returns the URL of the PostgreSQL the tests share.
func ServerURL() string {
	if u := os.Getenv("MHG_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return DefaultURL
}

// NewDatabase creates a database with a unique name on the server at
// serverURL ("" means ServerURL()), dropped at the test's cleanup, and
// returns its URL.
func NewDatabase(tb testing.TB, serverURL string) string {
	tb.Helper()
	if serverURL == "" {
		serverURL = ServerURL()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		tb.Fatalf("pgtest: connect to the test PostgreSQL (MHG_TEST_POSTGRES_URL, default %s): %v", DefaultURL, err)
	}
	defer conn.Close(ctx)
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "mhg_test_" + hex.EncodeToString(b[:])
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: create database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, serverURL)
		if err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Logf("pgtest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(serverURL)
	if err != nil {
		tb.Fatalf("pgtest: server URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// Exec runs statements on the database at dbURL as the connecting user (a
// superuser in tests), for tests that play an administrator.
func Exec(tb testing.TB, dbURL string, sql string, args ...any) {
	tb.Helper()
	// Long enough for a benchmark's generated data set.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		tb.Fatalf("pgtest: connect: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		tb.Fatalf("pgtest: %s: %v", firstLine(sql), err)
	}
}

func firstLine(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			return s[:i]
		}
	}
	return fmt.Sprint(s)
}
