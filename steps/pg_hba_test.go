package steps

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
)

const stockHba = `# TYPE  DATABASE        USER            ADDRESS                 METHOD

# "local" is for Unix domain socket connections only
local   all             all                                     peer
# IPv4 local connections:
host    all             all             127.0.0.1/32            scram-sha-256
host    all             all             0.0.0.0/0               reject
`

func TestInsertHbaRule(t *testing.T) {
	h := &PgHba{Type: "host", Database: "engine", User: "engine", Address: "192.0.2.10/32", Method: "scram-sha-256"}
	out, changed := insertHbaRule(stockHba, h.line(), h.fields())
	lines := strings.Split(out, "\n")
	if !changed || lines[4] != "host    engine          engine          192.0.2.10/32           scram-sha-256" {
		t.Fatalf("host rule not right below the local rule:\n%s", out)
	}
	// Whitespace-insensitive idempotence.
	spaced := strings.Replace(out, "host    engine          engine", "host engine\tengine", 1)
	if _, changed := insertHbaRule(spaced, h.line(), h.fields()); changed {
		t.Fatal("an equivalent rule was not recognised")
	}
	// A local rule goes above the catch-all peer rule, which would win.
	l := &PgHba{Type: "local", Database: "engine", User: "engine", Method: "scram-sha-256"}
	out, _ = insertHbaRule(stockHba, l.line(), l.fields())
	lines = strings.Split(out, "\n")
	if !strings.HasPrefix(lines[3], "local   engine") || !strings.HasPrefix(lines[4], "local   all") {
		t.Fatalf("local rule:\n%s", out)
	}
	// No local rules: at the top of the rules, never at the end.
	noLocal := "# comment\nhost all all 0.0.0.0/0 reject\n"
	out, _ = insertHbaRule(noLocal, h.line(), h.fields())
	if !strings.HasPrefix(strings.Split(out, "\n")[1], "host    engine") {
		t.Fatalf("no local:\n%s", out)
	}
	if f := hbaFields(`host "my db" all 10.0.0.0/8 md5 # c`); len(f) != 5 || f[1] != `"my db"` {
		t.Fatalf("fields %q", f)
	}
}

func TestPgHbaServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	h := &PgHba{Type: "host", Database: "engine", User: "engine", Address: "0.0.0.0/0", Method: "scram-sha-256",
		Reload: true, PgConnection: srv.pgConn()}
	if ps := h.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}
	before, _ := os.ReadFile(srv.HbaFile)
	dry := pgStepRuntime(secret.Values{}, true)
	acts, err := h.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(acts[0].Diff, "+host    engine") || len(acts) != 2 || !strings.Contains(acts[1].Summary, "pg_reload_conf") {
		t.Fatalf("describe: %+v", acts)
	}
	if ck, err := h.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check before: %+v %v", ck, err)
	}
	if now, _ := os.ReadFile(srv.HbaFile); string(now) != string(before) {
		t.Fatal("the dry run changed the file")
	}

	out, err := applyShown(ctx, t, h, dry, pgStepRuntime(secret.Values{}, false))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Output, "reloaded") {
		t.Fatalf("output %s", out.Output)
	}
	if got := srv.psql(t, "SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL"); got != "0" {
		t.Fatalf("errors in pg_hba_file_rules: %s", got)
	}
	// The rule comes before the catch-all host rules, after local ones.
	rules := srv.psql(t, "SELECT type || ' ' || array_to_string(database, ',') FROM pg_hba_file_rules ORDER BY line_number")
	if !strings.HasPrefix(rules, "local all\nhost engine\nhost all") {
		t.Fatalf("rule order:\n%s", rules)
	}
	if ck, err := h.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("check after: %+v %v", ck, err)
	}
	again, err := h.Apply(ctx, pgStepRuntime(secret.Values{}, false))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(srv.HbaFile); strings.Count(string(b), "host    engine") != 1 {
		t.Fatalf("second apply duplicated the rule: %+v", again)
	}

	// A rule the server cannot parse is not reloaded.
	broken := &PgHba{Type: "host", Database: "engine", User: "engine", Address: "300.1.2.3/32", Method: "md5",
		Reload: true, PgConnection: srv.pgConn()}
	if _, err := broken.Apply(ctx, pgStepRuntime(secret.Values{}, false)); err == nil || !strings.Contains(err.Error(), "not reloaded") {
		t.Fatalf("broken rule: %v", err)
	}
}
