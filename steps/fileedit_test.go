package steps

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/textedit"
)

// MIGRUN_UPDATE_GOLDEN=1 go test ./steps/ -run TestX rewrites the golden
// files of the file-editing kinds from what the code now produces (then
// read the diff before committing it).
const updateGoldenEnv = "MIGRUN_UPDATE_GOLDEN"

// editRuntime is a Runtime for step host "engine", a Local executor.
func editRuntime(ex executors.Executor, secrets secret.Values) *Runtime {
	rt := testRuntime(hosts{"engine": ex}, secrets, nil)
	rt.Host = "engine"
	return rt
}

// testdataFile copies steps/testdata/KIND/NAME into dir with mode and
// returns its path.
func testdataFile(t *testing.T, kind, name, dir string, mode fs.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", kind, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	writeFile(t, p, data, mode)
	return p
}

// assertGolden compares got with steps/testdata/KIND/NAME.
func assertGolden(t *testing.T, kind, name, got string) {
	t.Helper()
	p := filepath.Join("testdata", kind, name)
	if os.Getenv(updateGoldenEnv) != "" {
		if err := os.WriteFile(p, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run with %s=1 to create it)", err, updateGoldenEnv)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n%s", name, textedit.UnifiedDiff(p, string(want), got))
	}
}

// backupsOf lists the backups taken of p.
func backupsOf(t *testing.T, p string) []string {
	t.Helper()
	m, err := filepath.Glob(p + backupInfix + "*")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func readString(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// editSpec is what the edit tests need of a kind.
type editSpec interface {
	Check(context.Context, *Runtime) (Check, error)
	Describe(context.Context, *Runtime) ([]Action, error)
	Apply(context.Context, *Runtime) (Outcome, error)
}

// applyAndConverge applies spec to file p, which must change, and checks
// the rules every edit keeps: one backup holding the old content with the
// old mode, the file's mode kept, the backup named in the output, Check
// done afterwards, and a second Apply that changes and backs up nothing.
func applyAndConverge(t *testing.T, spec editSpec, rt *Runtime, p string) {
	t.Helper()
	ctx := context.Background()
	before := readString(t, p)
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if chk, err := spec.Check(ctx, rt); err != nil || chk.Done {
		t.Fatalf("Check before Apply = %+v, %v; want not done", chk, err)
	}
	dry := *rt
	dry.DryRun = true
	dry.Executor = func(ctx context.Context, host string) (executors.Executor, error) {
		e, err := rt.Executor(ctx, host)
		return executors.ReadOnly(e), err
	}
	acts, err := spec.Describe(ctx, &dry)
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	out, err := spec.Apply(ctx, rt)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// The dry run showed the change Apply made: its diff is the file's,
	// before and after, line for line (secrets masked alike).
	changed := diffBody(rt.Secrets.Redact(textedit.UnifiedDiff(p, before, readString(t, p))))
	var shown []string
	for _, a := range acts {
		shown = append(shown, diffBody(a.Diff))
	}
	if !slices.Contains(shown, changed) {
		t.Errorf("Apply changed the file by\n%s\nwhich the dry run did not show; it showed\n%s", changed, strings.Join(shown, "\n--\n"))
	}
	if !out.Changed {
		t.Fatalf("Apply: Changed = false, want true (%s)", out.Output)
	}
	bks := backupsOf(t, p)
	if len(bks) != 1 {
		t.Fatalf("backups = %v, want one", bks)
	}
	if !strings.Contains(out.Output, bks[0]) {
		t.Errorf("Output %q does not name the backup %s", out.Output, bks[0])
	}
	if got := readString(t, bks[0]); got != before {
		t.Errorf("backup holds %q, want the file before the edit %q", got, before)
	}
	for _, f := range []string{p, bks[0]} {
		got, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if got.Mode() != fi.Mode() {
			t.Errorf("%s: mode %v, want %v as before the edit", f, got.Mode(), fi.Mode())
		}
	}
	if chk, err := spec.Check(ctx, rt); err != nil || !chk.Done {
		t.Errorf("Check after Apply = %+v, %v; want done", chk, err)
	}
	after := readString(t, p)
	out, err = spec.Apply(ctx, rt)
	if err != nil || out.Changed {
		t.Errorf("second Apply = %+v, %v; want unchanged", out, err)
	}
	if got := readString(t, p); got != after {
		t.Errorf("second Apply changed the file")
	}
	if bks := backupsOf(t, p); len(bks) != 1 {
		t.Errorf("second Apply took a backup: %v", bks)
	}
}

// diffBody is a unified diff without its file header lines, the values
// of password assignments replaced: a dry run masks them (the old one as
// ********, the new one by its secret's name), the file holds them.
func diffBody(d string) string {
	var keep []string
	for _, l := range strings.Split(d, "\n") {
		if strings.HasPrefix(l, "--- ") || strings.HasPrefix(l, "+++ ") {
			continue
		}
		if k, _, ok := strings.Cut(l, "="); ok && strings.Contains(strings.ToLower(k), "password") {
			l = k + "=<masked>"
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "\n")
}

// assertDryRun runs Check and Describe through a read-only executor and
// Apply through it too (a runner bug, refused): nothing may be written.
func assertDryRun(t *testing.T, spec editSpec, secrets secret.Values, p string) {
	t.Helper()
	ctx := context.Background()
	before := readString(t, p)
	rec := record(executors.NewLocal("engine"))
	rt := editRuntime(executors.ReadOnly(rec), secrets)
	rt.DryRun = true
	if _, err := spec.Check(ctx, rt); err != nil {
		t.Fatalf("Check: %v", err)
	}
	acts, err := spec.Describe(ctx, rt)
	if err != nil || len(acts) != 1 || acts[0].Diff == "" {
		t.Fatalf("Describe = %+v, %v; want one action with a diff", acts, err)
	}
	if _, err := spec.Apply(ctx, rt); !errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly: err = %v, want ErrDryRun", err)
	}
	if ops := rec.writeOps(); len(ops) != 0 {
		t.Errorf("dry run wrote: %v", ops)
	}
	if readString(t, p) != before || len(backupsOf(t, p)) != 0 {
		t.Errorf("dry run changed the file or took a backup")
	}
}

// tamperingHost writes something other than it is given to one path, to
// prove that Apply re-reads what it wrote.
type tamperingHost struct {
	executors.Executor
	path string
}

func (h tamperingHost) WriteFile(ctx context.Context, p string, data []byte, a executors.FileAttrs) error {
	if p == h.path {
		data = append(append([]byte(nil), data...), "TAMPERED=1\n"...)
	}
	return h.Executor.WriteFile(ctx, p, data, a)
}

func TestEditFailsLoudlyWhenTheFileReadsBackWrong(t *testing.T) {
	p := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", t.TempDir(), 0o640)
	rt := editRuntime(tamperingHost{executors.NewLocal("engine"), p}, nil)
	_, err := (&OvirtDbConf{File: p, Host: "db.example.com"}).Apply(context.Background(), rt)
	if err == nil || !strings.Contains(err.Error(), "reads back different") || !strings.Contains(err.Error(), backupInfix) {
		t.Errorf("Apply = %v; want a read-back failure naming the backup", err)
	}
}

func TestEditRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", dir, 0o640)
	link := filepath.Join(dir, "link.conf")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	rt := editRuntime(executors.NewLocal("engine"), nil)
	_, err := (&OvirtDbConf{File: link, Host: "db.example.com"}).Apply(context.Background(), rt)
	if err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Apply on a symlink = %v; want refused", err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		t.Errorf("the symlink was replaced")
	}
}

// TestEditKeepsOwner needs root to hand the file to another owner.
func TestEditKeepsOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown")
	}
	p := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", t.TempDir(), 0o640)
	if err := os.Chown(p, 1234, 5678); err != nil {
		t.Fatal(err)
	}
	rt := editRuntime(executors.NewLocal("engine"), nil)
	applyAndConverge(t, &OvirtDbConf{File: p, Host: "db.example.com"}, rt, p)
	for _, f := range append([]string{p}, backupsOf(t, p)...) {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if st.Uid != 1234 || st.Gid != 5678 || fi.Mode().Perm() != 0o640 {
			t.Errorf("%s: %d:%d %04o, want 1234:5678 0640", f, st.Uid, st.Gid, fi.Mode().Perm())
		}
	}
}

func TestEditMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "later.conf")
	rt := editRuntime(executors.NewLocal("engine"), nil)
	spec := &OvirtDbConf{File: p, Host: "db.example.com"}
	chk, err := spec.Check(context.Background(), rt)
	if err != nil || !chk.Unknown || !strings.Contains(chk.Reason, "does not exist yet") {
		t.Errorf("Check = %+v, %v; want unknown: does not exist yet", chk, err)
	}
	if _, err := spec.Apply(context.Background(), rt); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("Apply = %v; want does not exist", err)
	}
}

func TestRawLines(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"a", []string{"a"}},
		{"a\n", []string{"a\n"}},
		{"a\r\nb", []string{"a\r\n", "b"}},
		{"\n\n", []string{"\n", "\n"}},
	} {
		got := textedit.RawLines(tt.in)
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || len(got) != len(tt.want) {
			t.Errorf("RawLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
