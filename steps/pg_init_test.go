package steps

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

func TestPgInitValidate(t *testing.T) {
	if ps := (&PgInit{DataDir: "relative/dir"}).Validate(); len(ps) != 1 || ps[0].Field != "data_dir" {
		t.Fatalf("problems %v", ps)
	}
	if ps := (&PgInit{Locale: "en_US.UTF-8", Encoding: "UTF8"}).Validate(); len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
}

func TestPgInitServer(t *testing.T) {
	srv := startPostgres(t) // for the skip rules and an existing cluster
	ctx := context.Background()
	dry := pgStepRuntime(secret.Values{}, true)

	// An existing cluster is done.
	if ck, err := (&PgInit{DataDir: srv.DataDir}).Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("existing cluster: %+v %v", ck, err)
	}

	// A fresh directory, owned by postgres like /var/lib/pgsql.
	root, err := os.MkdirTemp("", "migrun-pginit-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	u, _ := user.Lookup("postgres")
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	os.Chown(root, uid, gid)
	dir := filepath.Join(root, "data")
	i := &PgInit{Method: "initdb", DataDir: dir, Locale: srv.Locale, Encoding: "UTF8"}
	if ck, err := i.Check(ctx, dry); err != nil || ck.Done {
		t.Fatalf("fresh dir: %+v %v", ck, err)
	}
	acts, err := i.Describe(ctx, dry)
	if err != nil || !strings.Contains(acts[0].Summary, "as postgres: initdb -D "+dir+" --locale="+srv.Locale+" --encoding=UTF8") {
		t.Fatalf("describe: %+v %v", acts, err)
	}
	if _, err := i.Apply(ctx, dry); !errors.Is(err, executors.ErrDryRun) {
		t.Fatalf("apply under dry run: %v", err)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Fatal("the dry run created the data directory")
	}
	out, err := applyShown(ctx, t, i, dry, pgStepRuntime(secret.Values{}, false))
	if errors.As(err, new(*executors.ExitError)) && strings.Contains(err.Error(), "127") {
		t.Skipf("initdb is not on the postgres user's PATH: %v", err)
	}
	if err != nil || !out.Changed {
		t.Fatalf("apply: %+v %v", out, err)
	}
	if ck, err := i.Check(ctx, dry); err != nil || !ck.Done {
		t.Fatalf("after: %+v %v", ck, err)
	}

	// auto on this host finds neither postgresql-setup nor an init
	// script with initdb (Debian), so it falls back to initdb.
	auto := &PgInit{DataDir: dir}
	if cmd, err := auto.command(ctx, executors.ReadOnly(executors.NewLocal("db"))); err != nil || cmd.Argv[0] != "initdb" {
		t.Fatalf("auto: %+v %v", cmd, err)
	}
}
