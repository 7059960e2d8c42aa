package steps

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

func TestPgDumpValidate(t *testing.T) {
	tests := []struct {
		name string
		spec PgDump
		want []string // problem fields
	}{
		{"minimal", PgDump{Database: "engine", File: "/tmp/e.dump"}, nil},
		{"relative", PgDump{Database: "engine", File: "e.dump"}, []string{"file"}},
		{"unclean", PgDump{Database: "engine", File: "/tmp//e.dump"}, []string{"file"}},
		{"root", PgDump{Database: "engine", File: "/"}, []string{"file"}},
		{"jobs need directory", PgDump{Database: "engine", File: "/tmp/e", Jobs: 4}, []string{"jobs"}},
		{"jobs with directory", PgDump{Database: "engine", File: "/tmp/e", Jobs: 4, Format: "directory"}, nil},
		{"negative jobs", PgDump{Database: "engine", File: "/tmp/e", Jobs: -1, Format: "directory"}, []string{"jobs"}},
		{"connection", PgDump{Database: "engine", File: "/tmp/e", PgConnection: PgConnection{SocketDir: "run/srv", Port: 70000, OSUser: "a b"}},
			[]string{"socket_dir", "port", "os_user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := problemFields(tt.spec.Validate()); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems on %v, want %v (%v)", got, tt.want, tt.spec.Validate())
			}
		})
	}
}

func TestPgDumpArgv(t *testing.T) {
	d := PgDump{Database: "engine", File: "/var/tmp/engine.dump"}
	if got, want := d.argv(hostcmd.PartPath(d.File)), []string{"pg_dump", "-v", "-F", "c", "-f", "/var/tmp/engine.dump.migrun-part", "engine"}; !reflect.DeepEqual(got, want) {
		t.Errorf("custom: %q, want %q", got, want)
	}
	d = PgDump{Database: "engine", File: "/var/tmp/engine.d", Format: "directory", Jobs: 4, Compress: "0",
		PgConnection: PgConnection{SocketDir: "/run/srv", Port: 5433, OSUser: "srv"}}
	want := []string{"pg_dump", "-v", "-F", "d", "-j", "4", "-Z", "0", "-h", "/run/srv", "-p", "5433", "-f", "/var/tmp/engine.d.migrun-part", "engine"}
	if got := d.argv(hostcmd.PartPath(d.File)); !reflect.DeepEqual(got, want) {
		t.Errorf("directory: %q, want %q", got, want)
	}
	cmd := d.target().ClientCommand(d.argv("x"), false)
	if cmd.Become != "srv" || cmd.Env["LC_MESSAGES"] != "C" || cmd.ReadOnly {
		t.Errorf("command %+v", cmd)
	}
}

func TestPgDumpDescribe(t *testing.T) {
	d := PgDump{Database: "engine", File: "/var/tmp/engine.dump", Compress: "9"}
	acts, err := d.Describe(context.Background(), testRuntime(hosts{}, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	text := summaries(acts)
	for _, want := range []string{
		"run on db as postgres: LC_MESSAGES=C PGOPTIONS='-c lc_messages=C' pg_dump -v -F c -Z 9 -f /var/tmp/engine.dump.migrun-part engine",
		"rename /var/tmp/engine.dump.migrun-part to /var/tmp/engine.dump",
		"/var/tmp/engine.dump.migrun-meta",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("describe lacks %q:\n%s", want, text)
		}
	}
}

// writeMeta writes the sidecar for file as pg_dump's Apply would.
func writeMeta(t *testing.T, ex executors.Executor, file, database, format string) {
	t.Helper()
	dg, err := pg.DigestArchive(context.Background(), ex, file)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(dumpMeta{Database: database, Format: format, Size: dg.Size, SHA256: dg.SHA256, RunID: "run-1"})
	if err := os.WriteFile(metaPath(file), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestPgDumpCheckSidecar: an archive counts as a finished dump only with
// a sidecar that matches it; no server is needed for that.
func TestPgDumpCheckSidecar(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	ex := executors.NewLocal("db")
	rt := testRuntime(hosts{"db": executors.ReadOnly(ex)}, nil, nil)
	rt.RunID = "run-1"
	file := filepath.Join(dir, "engine.dump")
	d := &PgDump{Database: "engine", File: file}

	check := func(wantDone bool, wantReason string) {
		t.Helper()
		c, err := d.Check(ctx, rt)
		if err != nil {
			t.Fatal(err)
		}
		if c.Done != wantDone || !strings.Contains(c.Reason, wantReason) {
			t.Fatalf("check = %+v, want done=%v reason ~ %q", c, wantDone, wantReason)
		}
	}
	check(false, "no dump at")
	writeFile(t, file, []byte("PGDMP fake archive"), 0o644)
	check(false, "migrun-meta does not")
	writeMeta(t, ex, file, "engine", "custom")
	check(true, "complete dump of engine")
	// Complete, but from another run (a rehearsal) or seen by a dry run:
	// never reused, it would restore stale data.
	for _, other := range []string{"run-0", ""} {
		rt.RunID = other
		check(false, "from an earlier run")
	}
	rt.RunID = "run-1"

	// Same size, other bytes: the sha256 tells.
	writeFile(t, file, []byte("PGDMP fake archivX"), 0o644)
	check(false, "changed since it was dumped")
	writeMeta(t, ex, file, "other", "custom")
	check(false, `dump of database "other"`)
	os.WriteFile(metaPath(file), []byte("{torn"), 0o644)
	check(false, "unreadable")

	// A directory archive: digest of toc.dat plus the total size.
	ddir := filepath.Join(dir, "engine.d")
	os.Mkdir(ddir, 0o755)
	writeFile(t, filepath.Join(ddir, "toc.dat"), []byte("toc"), 0o644)
	writeFile(t, filepath.Join(ddir, "3001.dat.gz"), []byte("data"), 0o644)
	d = &PgDump{Database: "engine", File: ddir, Format: "directory"}
	writeMeta(t, ex, ddir, "engine", "directory")
	check(true, "complete dump")
	writeFile(t, filepath.Join(ddir, "3001.dat.gz"), []byte("more data"), 0o644)
	check(false, "changed since")
	writeMeta(t, ex, ddir, "engine", "directory")
	d.Format = "custom"
	check(false, "is a directory archive, not custom")
}

// problemFields lists the fields Validate's problems name, in order: what
// the table tests of Validate compare.
func problemFields(ps []Problem) []string {
	var fields []string
	for _, p := range ps {
		fields = append(fields, p.Field)
	}
	return fields
}
