package steps

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/pg"
)

// TestPreparedSessions: a session prepared for a step waits on the
// server's postgres database (a client of the step's own database could
// stand in the way of the step before it), and the step takes it moved to
// its database; one that no longer answers is replaced; what a step does
// not take goes with Done.
func TestPreparedSessions(t *testing.T) {
	srv := startPostgres(t)
	srv.psql(t, "CREATE DATABASE \"it's\"")
	ctx := context.Background()
	ex := executors.NewLocal("db")
	ep := PgEndpoint{Host: "db", Database: "it's", PgConnection: conn(srv)}
	rt := testRuntime(hosts{"db": ex}, nil, nil)
	rt.StepID, rt.Prepared = "verify", NewPrepared()
	defer rt.Prepared.Close()
	clients := func(db string) string {
		t.Helper()
		return srv.psql(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'psql' AND pid <> pg_backend_pid() AND datname = "+pg.Literal(db))
	}
	waitFor := func(what, db, want string) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); clients(db) != want; time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s psql clients on %s, want %s", what, clients(db), db, want)
			}
		}
	}

	rt.warmSession(ctx, ep, true)
	waitFor("warm", "postgres", "1")
	if n := clients("it's"); n != "0" {
		t.Fatalf("a warm session is a client of the step's database: %s", n)
	}
	s := rt.session(ctx, ex, ep.target(ep.Database), true)
	rows, err := s.Run(ctx, "SELECT current_database();")
	if err != nil || len(rows) != 1 || rows[0][0] != "it's" {
		t.Fatalf("taken session: %q %v", rows, err)
	}
	if n := clients("postgres"); n != "0" {
		t.Fatalf("the taken session still on postgres: %s", n)
	}
	s.Close()

	// Nothing warm: a new session.
	s = rt.session(ctx, ex, ep.target(ep.Database), true)
	if rows, err := s.Run(ctx, "SELECT 1;"); err != nil || len(rows) != 1 {
		t.Fatalf("new session: %q %v", rows, err)
	}
	s.Close()

	// The server restarted after the session was opened ahead.
	rt.warmSession(ctx, ep, true)
	waitFor("warm before the restart", "postgres", "1")
	srv.restart(t)
	s = rt.session(ctx, ex, ep.target(ep.Database), true)
	if rows, err := s.Run(ctx, "SELECT current_database();"); err != nil || len(rows) != 1 || rows[0][0] != "it's" {
		t.Fatalf("session after a restart: %q %v", rows, err)
	}
	s.Close()

	// Not taken: gone with the step; another step's is not its.
	rt.warmSession(ctx, ep, true)
	waitFor("warm, not taken", "postgres", "1")
	rt.Prepared.Done("another step")
	waitFor("another step's done", "postgres", "1")
	rt.Prepared.Done("verify")
	waitFor("done", "postgres", "0")
	other := *rt
	other.StepID = "finish"
	other.warmSession(ctx, ep, false)
	waitFor("warm for finish", "postgres", "1")
	if s := rt.session(ctx, ex, ep.target(ep.Database), false); s != nil {
		defer s.Close()
		if _, err := s.Run(ctx, "SELECT 1;"); err != nil {
			t.Fatal(err)
		}
		if n := clients("postgres"); n != "1" {
			t.Fatalf("verify took finish's session: %s left on postgres", n)
		}
	}
	rt.Prepared.Close()
	waitFor("closed", "postgres", "0")
	if !strings.Contains(clients("it's"), "1") {
		t.Fatalf("the session taken before Close is not open: %s", clients("it's"))
	}
}
