package pgtest

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestStartQueryRestart: the server answers, a database is created, and the
// data survives Stop + Restart.
func TestStartQueryRestart(t *testing.T) {
	srv := Start(t)
	url := srv.NewDatabase(t)
	ctx := context.Background()
	run := func(stmt string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, stmt).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := run(`WITH c AS (SELECT 1) SELECT 41 + 1`); n != 42 {
		t.Fatalf("got %d", n)
	}
	run(`SELECT count(*) FROM (SELECT 1) x`)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	srv.Stop()
	if _, err := pgx.Connect(ctx, url); err == nil {
		t.Fatal("connected to a stopped server")
	}
	srv.Restart()
	if n := run(`SELECT v FROM kept`); n != 7 {
		t.Fatalf("after restart: %d", n)
	}
}
