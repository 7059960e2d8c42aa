package steps

import (
	"fmt"
	"os"
	"testing"

	"github.com/migrun/migrun/internal/pgtest"
	"github.com/migrun/migrun/steps/internal/pg"
)

// pgBinDir holds the PostgreSQL 15 server binaries the tests start.
const pgBinDir = pgtest.BinDir

// testPG is a throwaway PostgreSQL cluster owned by one test (see
// pgtest.Server), with the short names these tests use.
type testPG struct{ *pgtest.Server }

// startPostgres starts a cluster for t (see pgtest.Start).
func startPostgres(t *testing.T) *testPG { t.Helper(); return &testPG{pgtest.Start(t)} }

// target is how psql reaches this cluster, as the postgres OS user.
func (p *testPG) target() pg.Target {
	return pg.Target{Host: p.SocketDir, Port: p.Port}
}

func (p *testPG) restart(t *testing.T) { t.Helper(); p.Restart(t) }

func (p *testPG) psql(t *testing.T, sql string, db ...string) string {
	t.Helper()
	return p.Psql(t, sql, db...)
}

func (p *testPG) hold(t *testing.T, db string) (release func()) { t.Helper(); return p.Hold(t, db) }

// TestStartPostgres checks the helper itself: the cluster runs, is reached
// through target(), and uses the advertised locale.
func TestStartPostgres(t *testing.T) {
	srv := startPostgres(t)
	got := srv.psql(t, "SHOW server_encoding; SHOW lc_collate; SELECT 'listen=' || current_setting('listen_addresses')")
	want := fmt.Sprintf("UTF8\n%s\nlisten=", srv.Locale)
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	if pg.NormLocale(srv.Locale) != pg.NormLocale("en_US.UTF-8") && pg.NormLocale(srv.Locale) != pg.NormLocale("C.UTF-8") {
		t.Errorf("locale %q is neither en_US.UTF-8 nor C.UTF-8", srv.Locale)
	}
	for _, f := range []string{srv.ConfFile, srv.HbaFile} {
		if _, err := os.Stat(f); err != nil {
			t.Fatal(err)
		}
	}
}
