package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestClusterRestart(t *testing.T) {
	c := StartCluster(t)
	db := NewDatabase(t, c.URL())
	Exec(t, db, "CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
	c.Restart()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT n FROM kept").Scan(&n); err != nil || n != 7 {
		t.Fatalf("after restart: %d, %v", n, err)
	}
}
