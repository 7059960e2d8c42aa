package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgDatabaseSQL(t *testing.T) {
	d := &PgDatabase{Name: "engine", Owner: "engine", LcCollate: "en_US.UTF-8", LcCtype: "en_US.UTF-8",
		Extensions: []string{"uuid-ossp"}, Settings: map[string]string{"lc_messages": "en_US.UTF-8"}}
	inPostgres, inDatabase := d.plan(pgDatabaseState{}, false)
	want := `CREATE DATABASE "engine" OWNER "engine" TEMPLATE "template0" ENCODING 'UTF8' LC_COLLATE 'en_US.UTF-8' LC_CTYPE 'en_US.UTF-8';` + "\n" +
		`ALTER DATABASE "engine" SET "lc_messages" = 'en_US.UTF-8';` + "\n"
	if inPostgres != want || inDatabase != `CREATE EXTENSION IF NOT EXISTS "uuid-ossp";`+"\n" {
		t.Fatalf("got\n%s%s", inPostgres, inDatabase)
	}
	c := d.conflicts(pgDatabaseState{exists: true, owner: "postgres", encoding: "SQL_ASCII", collate: "C", ctype: "en_US.utf8"})
	if len(c) != 3 || !strings.Contains(c[0], "owner is postgres, want engine") || !strings.Contains(c[1], "encoding is SQL_ASCII") || !strings.Contains(c[2], "lc_collate is C") {
		t.Fatalf("conflicts %q", c)
	}
	if pg.NormLocale("en_US.UTF-8") != pg.NormLocale("en_US.utf8") {
		t.Fatal("locale spellings differ")
	}
}

func TestPgDatabaseServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	srv.psql(t, "CREATE ROLE engine LOGIN")
	d := &PgDatabase{Name: "engine", Owner: "engine", LcCollate: srv.Locale, LcCtype: srv.Locale,
		Extensions: []string{"uuid-ossp"}, Settings: map[string]string{"lc_messages": srv.Locale}, PgConnection: srv.pgConn()}
	if ps := d.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	dry := pgStepRuntime(secret.Values{}, true)
	if ck, err := d.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check before: %+v %v", ck, err)
	}
	acts, err := d.Describe(ctx, dry)
	if err != nil || len(acts) != 2 || !strings.Contains(acts[0].Summary, "CREATE DATABASE") || !strings.Contains(acts[1].Summary, "uuid-ossp") {
		t.Fatalf("describe: %+v %v", acts, err)
	}
	if got := srv.psql(t, "SELECT count(*) FROM pg_database WHERE datname = 'engine'"); got != "0" {
		t.Fatal("the dry run created the database")
	}

	rt := pgStepRuntime(secret.Values{}, false)
	if _, err := applyShown(ctx, t, d, dry, rt); err != nil {
		t.Fatal(err)
	}
	got := srv.psql(t, "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = 'engine'")
	if got != "engine|UTF8|"+srv.Locale+"|"+srv.Locale {
		t.Fatalf("database: %s", got)
	}
	if got := srv.psql(t, "SELECT extname FROM pg_extension WHERE extname = 'uuid-ossp'", "engine"); got != "uuid-ossp" {
		t.Fatalf("extension: %q", got)
	}
	if got := srv.psql(t, "SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE datname = 'engine'"); got != "lc_messages="+srv.Locale {
		t.Fatalf("settings: %q", got)
	}
	if ck, err := d.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("check after: %+v %v", ck, err)
	}
	if out, err := d.Apply(ctx, rt); err != nil || out.Changed {
		t.Fatalf("second apply: %+v %v", out, err)
	}

	// An existing database that differs: every difference named, nothing dropped.
	srv.psql(t, "CREATE DATABASE other TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'")
	o := &PgDatabase{Name: "other", Owner: "engine", LcCollate: srv.Locale, LcCtype: srv.Locale, PgConnection: srv.pgConn()}
	_, err = o.Apply(ctx, rt)
	for _, w := range []string{"owner is postgres, want engine", "encoding is SQL_ASCII, want UTF8", "lc_collate is C", "lc_ctype is C", "never drops"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Fatalf("differing database: %v (want %q)", err, w)
		}
	}
	if _, err := o.Check(ctx, dry); err == nil {
		t.Fatal("check accepted a differing database")
	}

	// A locale the host lacks is refused before CREATE DATABASE.
	x := &PgDatabase{Name: "x", LcCollate: "xx_XX.UTF-8", PgConnection: srv.pgConn()}
	if _, err := x.Apply(ctx, rt); err == nil || !strings.Contains(err.Error(), "locale xx_XX.UTF-8 is not installed") {
		t.Fatalf("missing locale: %v", err)
	}
}
