package steps

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
)

func TestSetConfParams(t *testing.T) {
	in := "# comment about max_connections\n" +
		"#listen_addresses = 'localhost'\t\t# what IP address(es) to listen on;\n" +
		"#max_connections = 100\t\t\t# (change requires restart)\n" +
		"work_mem = 4MB\n" +
		"work_mem = 6MB # later one wins\n" +
		"shared_buffers = 128MB"
	out, what, notes := setConfParams(in, map[string]string{
		"listen_addresses": "*", "max_connections": "150", "work_mem": "8MB",
		"shared_buffers": "128MB", "lc_messages": "en_US.UTF-8",
	})
	want := "# comment about max_connections\n" +
		"listen_addresses = '*'\t\t# what IP address(es) to listen on;\n" +
		"max_connections = 150\t\t\t# (change requires restart)\n" +
		"work_mem = 4MB\n" +
		"work_mem = 8MB # later one wins\n" +
		"shared_buffers = 128MB\n" +
		"lc_messages = 'en_US.UTF-8'\n"
	if out != want {
		t.Fatalf("got:\n%s\nwant:\n%s", out, want)
	}
	if len(what) != 4 || len(notes) != 1 || !strings.Contains(notes[0], "lc_messages") {
		t.Fatalf("what %q notes %q", what, notes)
	}
	// Idempotent, and a value quoted in the plan is written as is.
	again, what, _ := setConfParams(out, map[string]string{"listen_addresses": "'*'", "work_mem": "8MB"})
	if again != out || len(what) != 0 {
		t.Fatalf("second edit changed %q:\n%s", what, again)
	}
	if v := confValues(out); v["work_mem"] != "8MB" || v["listen_addresses"] != "*" {
		t.Fatalf("values %q", v)
	}
}

func TestPgConfValueQuoting(t *testing.T) {
	for in, want := range map[string]string{
		"150": "150", "0.01": "0.01", "8MB": "8MB", "on": "on", "*": "'*'",
		"'*'": "'*'", "it's": "'it''s'", "": "''", "en_US.UTF-8": "'en_US.UTF-8'",
	} {
		if got := pgConfValue(in); got != want {
			t.Errorf("pgConfValue(%q) = %s, want %s", in, got, want)
		}
		if got := unquoteConf(pgConfValue(in)); got != strings.Trim(in, "'") && in != "it's" {
			t.Errorf("unquote(%s) = %q", pgConfValue(in), got)
		}
	}
	if n, ok := pgNumeric("8MB", "kB"); !ok || n != 8192 {
		t.Errorf("8MB in kB = %v %v", n, ok)
	}
	if n, ok := pgNumeric("1GB", "8kB"); !ok || n != 131072 {
		t.Errorf("1GB in 8kB = %v %v", n, ok)
	}
	if n, ok := pgNumeric("1min", "s"); !ok || n != 60 {
		t.Errorf("1min in s = %v %v", n, ok)
	}
}

func TestPgConfServer(t *testing.T) {
	pg := startPostgres(t)
	ctx := context.Background()
	before, err := os.ReadFile(pg.ConfFile)
	if err != nil {
		t.Fatal(err)
	}
	c := &PgConf{Settings: map[string]string{"max_connections": "150", "work_mem": "8MB"}, PgConnection: pg.pgConn()}
	if ps := c.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}

	// Dry run: a diff, the report, and the file untouched.
	dry := pgStepRuntime(secret.Values{}, true)
	acts, err := c.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(acts[0].Diff, "+max_connections = 150") || !strings.Contains(acts[0].Summary, "restart needed for max_connections") ||
		!strings.Contains(acts[0].Summary, "reload needed for work_mem") {
		t.Fatalf("describe: %s\n%s", acts[0].Summary, acts[0].Diff)
	}
	if ck, err := c.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("check before: %+v %v", ck, err)
	}

	rt := pgStepRuntime(secret.Values{}, false)
	out, err := c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Output, "reload needed for work_mem") || !strings.Contains(out.Output, "restart needed for max_connections") {
		t.Fatalf("apply output: %s", out.Output)
	}
	after, _ := os.ReadFile(pg.ConfFile)
	if strings.Count(string(after), "max_connections =") != 1 || len(strings.Split(string(after), "\n")) != len(strings.Split(string(before), "\n")) {
		t.Fatalf("the edit added lines instead of replacing them")
	}
	if fi, _ := os.Stat(pg.ConfFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode now %v", fi.Mode())
	}
	ck, err := c.Check(ctx, dry)
	if err != nil || !ck.Done || !strings.Contains(ck.Reason, "reload needed") {
		t.Fatalf("check after edit: %+v %v", ck, err)
	}

	// apply_with: reload: work_mem is in force after, max_connections
	// still waits for a restart.
	c.ApplyWith = "reload"
	if ck, _ := c.Check(ctx, dry); ck.Done {
		t.Fatalf("check with reload pending: %+v", ck)
	}
	out, err = c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.Output, "reload needed") || !strings.Contains(out.Output, "restart needed for max_connections") {
		t.Fatalf("apply with reload: %s", out.Output)
	}
	if got := pg.psql(t, "SHOW work_mem"); got != "8MB" {
		t.Fatalf("work_mem after reload: %s", got)
	}
	pg.restart(t)
	if ck, err := c.Check(ctx, dry); err != nil || !ck.Done || !strings.Contains(ck.Reason, "already uses") {
		t.Fatalf("check after restart: %+v %v", ck, err)
	}

	// A typo is an error, not a silent new line.
	bad := &PgConf{Settings: map[string]string{"max_conections": "150"}, PgConnection: pg.pgConn()}
	if _, err := bad.Check(ctx, dry); err == nil || !strings.Contains(err.Error(), "unknown parameter max_conections") {
		t.Fatalf("typo: %v", err)
	}
}
