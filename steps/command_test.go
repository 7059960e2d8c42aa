package steps

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

// recorder wraps an executor and records what passes through it: the
// commands run (stdin read out and replayed), every operation that would
// change the host, and the bytes read through Open.
type recorder struct {
	executors.Executor
	mu        sync.Mutex
	commands  []recordedCommand
	writes    []string // "write /p 0600", "rename /a /b", ...
	bytesRead int64
}

type recordedCommand struct {
	executors.Command
	stdin string
}

func record(e executors.Executor) *recorder { return &recorder{Executor: e} }

func (r *recorder) wrote(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.writes = append(r.writes, fmt.Sprintf(format, args...))
}

func (r *recorder) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	rc := recordedCommand{Command: cmd}
	if cmd.Stdin != nil {
		b, err := io.ReadAll(cmd.Stdin)
		if err != nil {
			return executors.Result{}, err
		}
		rc.stdin = string(b)
		cmd.Stdin = bytes.NewReader(b)
	}
	r.mu.Lock()
	r.commands = append(r.commands, rc)
	r.mu.Unlock()
	return r.Executor.Run(ctx, cmd)
}

func (r *recorder) WriteFile(ctx context.Context, p string, data []byte, a executors.FileAttrs) error {
	r.wrote("write %s %04o %s", p, a.Mode, a.Owner)
	return r.Executor.WriteFile(ctx, p, data, a)
}

func (r *recorder) OpenWriter(ctx context.Context, p string, off int64) (executors.WriteFile, error) {
	r.wrote("openwriter %s %d", p, off)
	return r.Executor.OpenWriter(ctx, p, off)
}

func (r *recorder) Rename(ctx context.Context, from, to string) error {
	r.wrote("rename %s %s", from, to)
	return r.Executor.Rename(ctx, from, to)
}

func (r *recorder) Remove(ctx context.Context, p string) error {
	r.wrote("remove %s", p)
	return r.Executor.Remove(ctx, p)
}

func (r *recorder) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	r.wrote("mkdir %s %04o", p, perm)
	return r.Executor.MkdirAll(ctx, p, perm)
}

func (r *recorder) SetAttrs(ctx context.Context, p string, a executors.FileAttrs) error {
	r.wrote("attrs %s %04o %s %s", p, a.Mode, a.Owner, a.Group)
	return r.Executor.SetAttrs(ctx, p, a)
}

func (r *recorder) Open(ctx context.Context, p string) (executors.ReadFile, error) {
	f, err := r.Executor.Open(ctx, p)
	if err != nil {
		return nil, err
	}
	return &countingFile{ReadFile: f, r: r}, nil
}

func (r *recorder) read() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytesRead
}

func (r *recorder) writeOps() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.writes...)
}

type countingFile struct {
	executors.ReadFile
	r *recorder
}

func (f *countingFile) Read(p []byte) (int, error) {
	n, err := f.ReadFile.Read(p)
	f.r.mu.Lock()
	f.r.bytesRead += int64(n)
	f.r.mu.Unlock()
	return n, err
}

// hosts maps plan host names to executors for a test Runtime.
type hosts map[string]executors.Executor

func (h hosts) get(_ context.Context, name string) (executors.Executor, error) {
	if e, ok := h[name]; ok {
		return e, nil
	}
	return nil, fmt.Errorf("unknown host %q", name)
}

// testRuntime is a Runtime for step host "db"; out collects the output.
func testRuntime(h hosts, secrets secret.Values, out io.Writer) *Runtime {
	if out == nil {
		out = io.Discard
	}
	return &Runtime{
		StepID:   "s1",
		Host:     "db",
		Executor: h.get,
		Secrets:  secrets,
		Output:   out,
		Progress: NopProgress{},
	}
}

// summaries joins the actions' one-line summaries, one a line.
func summaries(acts []Action) string {
	lines := make([]string, len(acts))
	for i, a := range acts {
		lines[i] = a.Summary
	}
	return strings.Join(lines, "\n")
}

func TestCommandValidate(t *testing.T) {
	tests := []struct {
		name string
		cmd  Command
		want []string // "field: message substring"
	}{
		{"argv", Command{Argv: []string{"true"}}, nil},
		{"script", Command{Script: "true", Creates: "/x", Dir: "/tmp", Env: map[string]string{"A_1": "x"}}, nil},
		{"both", Command{Argv: []string{"true"}, Script: "true"}, []string{"script: not both"}},
		{"neither", Command{}, []string{": give the command"}},
		{"empty program", Command{Argv: []string{""}}, []string{"argv: empty"}},
		{"blank script", Command{Script: " \n"}, []string{"script: blank"}},
		{"relative creates", Command{Script: "x", Creates: "out/file"}, []string{"creates: not an absolute path"}},
		{"relative dir", Command{Script: "x", Dir: "work"}, []string{"dir: not an absolute path"}},
		{"bad env", Command{Script: "x", Env: map[string]string{"1X": "a", "A-B": "b"}}, []string{"env: \"1X\"", "env: \"A-B\""}},
		{"blank unless", Command{Script: "x", Unless: "  "}, []string{"unless: blank"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.cmd.Validate()
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d problem(s) %v", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				field, msg, _ := strings.Cut(w, ": ")
				if got[i].Field != field || !strings.Contains(got[i].Message, msg) {
					t.Errorf("problem %d = %+v, want field %q and message containing %q", i, got[i], field, msg)
				}
			}
		})
	}
}

func TestCommandApply(t *testing.T) {
	dir := t.TempDir()
	pw := secret.Token("db_pw")
	secrets := secret.Values{"db_pw": "hunter2-value"}
	tests := []struct {
		name     string
		cmd      Command
		wantOut  []string // in Outcome.Output and the streamed output
		wantFile string   // content of dir/out afterwards, if set
	}{
		{"argv", Command{Argv: []string{"echo", "hello world", "$HOME"}}, []string{"hello world $HOME\n"}, ""},
		{"script with stderr", Command{Script: "echo out; echo err >&2"}, []string{"out\n", "err\n"}, ""},
		{"env", Command{Script: `echo "v=$MIGRUN_T"`, Env: map[string]string{"MIGRUN_T": "a b"}}, []string{"v=a b"}, ""},
		{"dir", Command{Argv: []string{"pwd"}, Dir: dir}, []string{dir}, ""},
		{"stdin with secret", Command{Script: "cat > " + dir + "/out; echo wrote", Stdin: "user=x\npassword=" + pw + "\n"},
			[]string{"wrote"}, "user=x\npassword=hunter2-value\n"},
		{"output redacted", Command{Argv: []string{"cat"}, Stdin: "pw is " + pw}, []string{"pw is ********"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var streamed bytes.Buffer
			rt := testRuntime(hosts{"db": executors.NewLocal("db")}, secrets, &streamed)
			dry := testRuntime(hosts{"db": executors.ReadOnly(executors.NewLocal("db"))}, secrets, nil)
			dry.DryRun = true
			out, err := applyShown(context.Background(), t, &tt.cmd, dry, rt)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if !out.Changed {
				t.Error("Changed = false, want true")
			}
			for _, w := range tt.wantOut {
				if !strings.Contains(out.Output, w) {
					t.Errorf("Output = %q, want it to contain %q", out.Output, w)
				}
				if !strings.Contains(streamed.String(), w) {
					t.Errorf("streamed output = %q, want it to contain %q", streamed.String(), w)
				}
			}
			for _, s := range []string{out.Output, streamed.String()} {
				if strings.Contains(s, "hunter2") {
					t.Errorf("output holds the secret value: %q", s)
				}
			}
			if tt.wantFile != "" {
				b, err := os.ReadFile(filepath.Join(dir, "out"))
				if err != nil || string(b) != tt.wantFile {
					t.Errorf("out file = %q, %v; want %q", b, err, tt.wantFile)
				}
			}
		})
	}
}

func TestCommandExitError(t *testing.T) {
	rt := testRuntime(hosts{"db": executors.NewLocal("db")}, nil, nil)
	c := &Command{Script: "echo partial; echo broken >&2; exit 3"}
	out, err := c.Apply(context.Background(), rt)
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 3 {
		t.Fatalf("Apply error = %v, want an *ExitError with code 3", err)
	}
	var where *WhereError
	if !errors.As(err, &where) || where.Where != "run on db" {
		t.Errorf("error %q does not say where it ran", err)
	}
	if !strings.Contains(out.Output, "partial") || !strings.Contains(out.Output, "broken") {
		t.Errorf("Output = %q, want the command's output kept on failure", out.Output)
	}
}

// TestCommandSecretScript runs a script holding a secret: it must reach
// the host only as a 0600 file that is gone afterwards, never in argv.
func TestCommandSecretScript(t *testing.T) {
	dir := t.TempDir()
	secrets := secret.Values{"db_pw": "s3cr3t-value"}
	for _, fail := range []bool{false, true} {
		t.Run(fmt.Sprintf("fail=%v", fail), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%v", fail))
			script := `printf '%s' "` + secret.Token("db_pw") + `" > ` + out + "\n" +
				// $0 is the script file: report its mode while it runs.
				`stat -c 'mode=%a' "$0"` + "\n"
			if fail {
				script += "exit 7\n"
			}
			rec := record(executors.NewLocal("db"))
			rt := testRuntime(hosts{"db": rec}, secrets, nil)
			res, err := (&Command{Script: script, Env: map[string]string{"X": "1"}}).Apply(context.Background(), rt)
			if fail != (err != nil) {
				t.Fatalf("Apply error = %v, want failure %v", err, fail)
			}
			if b, _ := os.ReadFile(out); string(b) != "s3cr3t-value" {
				t.Errorf("the script wrote %q, want the revealed secret", b)
			}
			if !strings.Contains(res.Output, "mode=600") {
				t.Errorf("Output = %q, want the script file to have been mode 600", res.Output)
			}

			if len(rec.commands) != 1 {
				t.Fatalf("ran %d commands, want 1", len(rec.commands))
			}
			cmd := rec.commands[0]
			if cmd.Script != "" || len(cmd.Argv) != 2 || cmd.Argv[0] != "sh" || !strings.HasPrefix(cmd.Argv[1], "/tmp/migrun-") {
				t.Fatalf("ran %+v, want argv [sh /tmp/migrun-...]", cmd.Command)
			}
			for _, s := range append(append([]string{cmd.Script, cmd.Dir}, cmd.Argv...), fmt.Sprint(cmd.Env)) {
				if strings.Contains(s, "s3cr3t") || secret.Contains(s) {
					t.Errorf("secret in argv/script/env/dir: %q", s)
				}
			}
			file := cmd.Argv[1]
			ops := rec.writeOps()
			if len(ops) != 2 || ops[0] != "write "+file+" 0600 " || ops[1] != "remove "+file {
				t.Errorf("file operations = %q, want a 0600 write of %s then its removal", ops, file)
			}
			if _, err := os.Stat(file); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("script file %s still there after the run (stat: %v)", file, err)
			}
		})
	}
}

func TestCommandCheck(t *testing.T) {
	dir := t.TempDir()
	exists := filepath.Join(dir, "exists")
	if err := os.WriteFile(exists, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name       string
		cmd        Command
		wantDone   bool
		wantReason string
		wantProbes int
	}{
		{"no check", Command{Argv: []string{"true"}}, false, "runs every time", 0},
		{"creates exists", Command{Argv: []string{"true"}, Creates: exists}, true, exists + " exists", 0},
		{"creates missing", Command{Argv: []string{"true"}, Creates: missing}, false, missing + " does not exist", 0},
		{"unless exit 0", Command{Argv: []string{"true"}, Unless: "test -f " + exists}, true, "exited 0", 1},
		{"unless exit 1", Command{Argv: []string{"true"}, Unless: "test -f " + missing}, false, "exited 1", 1},
		{"unless sees env and dir", Command{Argv: []string{"true"}, Dir: dir, Env: map[string]string{"F": "exists"},
			Unless: `test -f "$F"`}, true, "exited 0", 1},
		// creates answers first; unless is not run then.
		{"creates before unless", Command{Argv: []string{"true"}, Creates: exists, Unless: "false"}, true, "exists", 0},
		{"both not done", Command{Argv: []string{"true"}, Creates: missing, Unless: "false"}, false, "does not exist; unless `false` exited 1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := record(executors.NewLocal("db"))
			// Through ReadOnly, as in a dry run: a check must not be refused.
			rt := testRuntime(hosts{"db": executors.ReadOnly(rec)}, nil, nil)
			rt.DryRun = true
			got, err := tt.cmd.Check(context.Background(), rt)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.Done != tt.wantDone || got.Unknown || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Check = %+v, want Done %v with reason containing %q", got, tt.wantDone, tt.wantReason)
			}
			if len(rec.commands) != tt.wantProbes {
				t.Fatalf("ran %d commands, want %d", len(rec.commands), tt.wantProbes)
			}
			for _, c := range rec.commands {
				if !c.ReadOnly {
					t.Errorf("probe %+v not marked ReadOnly", c.Command)
				}
			}
		})
	}
}

func TestCommandDryRunChangesNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	c := &Command{Script: "touch " + marker, Creates: marker, Stdin: "x"}
	rec := record(executors.NewLocal("db"))
	rt := testRuntime(hosts{"db": executors.ReadOnly(rec)}, nil, nil)
	rt.DryRun = true
	if _, err := c.Check(context.Background(), rt); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if _, err := c.Describe(context.Background(), rt); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	// Apply under a dry run is a runner bug; the executor still refuses.
	if _, err := c.Apply(context.Background(), rt); !errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly: err = %v, want ErrDryRun", err)
	}
	if len(rec.commands) != 0 || len(rec.writeOps()) != 0 {
		t.Errorf("dry run reached the host: commands %v, writes %v", rec.commands, rec.writeOps())
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("marker exists after a dry run")
	}
}

func TestCommandDescribe(t *testing.T) {
	pw := secret.Token("db_pw")
	tests := []struct {
		name    string
		become  string
		cmd     Command
		want    string
		inDiff  []string
		notDiff bool
	}{
		{"argv", "", Command{Argv: []string{"pg_dump", "-F", "c", "-f", "/tmp/engine dump"}},
			"run on db: pg_dump -F c -f '/tmp/engine dump'", nil, true},
		{"become env dir", "postgres", Command{Argv: []string{"psql"}, Dir: "/var/lib", Env: map[string]string{"PGHOST": "/run/pg", "A": "x y"}},
			"run on db as postgres: cd /var/lib && A='x y' PGHOST=/run/pg psql", nil, true},
		{"script", "", Command{Script: "systemctl stop ovirt-engine\n"},
			"run on db: systemctl stop ovirt-engine", nil, true},
		{"script with env", "", Command{Script: "echo $A", Env: map[string]string{"A": "1"}},
			"run on db: A=1 sh -c 'echo $A'", nil, true},
		{"multi-line script", "", Command{Script: "set -e\ncd /tmp\nls\n"},
			"run on db: sh -c <script below, 3 lines>", []string{"+set -e\n", "+ls\n"}, false},
		{"stdin with secret", "postgres", Command{Argv: []string{"psql"}, Stdin: "\\set ON_ERROR_STOP\nALTER ROLE engine PASSWORD '" + pw + "';\n\\q\n"},
			"run on db as postgres: psql (stdin: 3 lines, secret db_pw)", nil, true},
		{"stdin without secret", "", Command{Argv: []string{"cat"}, Stdin: "one line, no newline"},
			"run on db: cat (stdin: 1 line)", nil, true},
		{"secret script", "", Command{Script: "mysql -p" + pw + " -e 'select 1'"},
			"run on db: sh /tmp/migrun-*.sh (the script below holds secret db_pw: written to a 0600 file, removed after)",
			[]string{"+mysql -p<secret:db_pw> -e 'select 1'"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// No executor: Describe of a command must not need the host.
			rt := testRuntime(hosts{}, secret.Values{"db_pw": "hunter2"}, nil)
			rt.Become = tt.become
			acts, err := tt.cmd.Describe(context.Background(), rt)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			if len(acts) != 1 {
				t.Fatalf("Describe = %+v, want one action", acts)
			}
			a := acts[0]
			if a.Summary != tt.want || a.Host != "db" {
				t.Errorf("Summary = %q (host %q)\n          want %q (host db)", a.Summary, a.Host, tt.want)
			}
			if tt.notDiff && a.Diff != "" {
				t.Errorf("Diff = %q, want none", a.Diff)
			}
			for _, w := range tt.inDiff {
				if !strings.Contains(a.Diff, w) {
					t.Errorf("Diff = %q, want it to contain %q", a.Diff, w)
				}
			}
			for _, s := range []string{a.Summary, a.Diff} {
				if strings.Contains(s, "hunter2") || secret.Contains(s) {
					t.Errorf("unmasked secret in %q", s)
				}
			}
		})
	}
}

func TestKindsSchema(t *testing.T) {
	for _, k := range Builtin().Kinds() {
		t.Run(k.Name, func(t *testing.T) {
			fields := SchemaOf(k.New()) // panics on a tag mistake
			keys := map[string]Field{}
			for _, f := range fields {
				if f.Doc == "" {
					t.Errorf("field %s has no doc", f.Key)
				}
				keys[f.Key] = f
			}
			if s, ok := k.New().(ScalarSpec); ok {
				if _, ok := keys[s.ScalarField()]; !ok {
					t.Errorf("ScalarField %q is not a key", s.ScalarField())
				}
			}
		})
	}
	// Only stdin and script may hold secrets in a command; nothing in copy.
	allowed := map[string]bool{"command.stdin": true, "command.script": true}
	for _, k := range []Kind{commandKind, copyKind} {
		for _, f := range SchemaOf(k.New()) {
			if f.SecretAllowed != allowed[k.Name+"."+f.Key] {
				t.Errorf("%s.%s: SecretAllowed = %v", k.Name, f.Key, f.SecretAllowed)
			}
		}
	}
	if commandKind.NeedsHost != true || copyKind.NeedsHost != false {
		t.Errorf("NeedsHost: command %v, copy %v; want true, false", commandKind.NeedsHost, copyKind.NeedsHost)
	}
}

// stubHost answers Run, Stat, WriteFile and Remove without touching
// anything, for what the test machine cannot do (become another user).
type stubHost struct {
	executors.Executor // nil: other methods are not expected
	rec                *recorder
}

func (s stubHost) Name() string { return "db" }

// Stat finds every path: a directory.
func (s stubHost) Stat(ctx context.Context, p string) (executors.FileInfo, error) {
	return executors.FileInfo{Name: p, Mode: fs.ModeDir | 0o755}, nil
}

func (s stubHost) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	s.rec.mu.Lock()
	defer s.rec.mu.Unlock()
	s.rec.commands = append(s.rec.commands, recordedCommand{Command: cmd})
	if cmd.ReadOnly {
		return executors.Result{ExitCode: 1}, &executors.ExitError{Host: "db", ExitCode: 1}
	}
	return executors.Result{}, nil
}

func (s stubHost) WriteFile(ctx context.Context, p string, data []byte, a executors.FileAttrs) error {
	s.rec.wrote("write %s %04o %s", p, a.Mode, a.Owner)
	return nil
}

func (s stubHost) Remove(ctx context.Context, p string) error {
	s.rec.wrote("remove %s", p)
	return nil
}

// TestCommandBecome: the probe, the command and the script file all run
// as (or belong to) the become user.
func TestCommandBecome(t *testing.T) {
	rec := &recorder{}
	rt := testRuntime(hosts{"db": stubHost{rec: rec}}, secret.Values{"pw": "x"}, nil)
	rt.Become = "postgres"
	c := &Command{Script: "psql -c \"ALTER ROLE a PASSWORD '" + secret.Token("pw") + "'\"", Unless: "false", Dir: "/var/lib/pgsql"}
	if chk, err := c.Check(context.Background(), rt); err != nil || chk.Done {
		t.Fatalf("Check = %+v, %v; want not done", chk, err)
	}
	if _, err := c.Apply(context.Background(), rt); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(rec.commands) != 2 {
		t.Fatalf("ran %d commands, want the probe and the script", len(rec.commands))
	}
	for _, cmd := range rec.commands {
		if cmd.Become != "postgres" || cmd.Dir != "/var/lib/pgsql" {
			t.Errorf("%+v: want become postgres in /var/lib/pgsql", cmd.Command)
		}
	}
	if ops := rec.writeOps(); len(ops) != 2 || !strings.HasSuffix(ops[0], ".sh 0600 postgres") {
		t.Errorf("file operations = %q, want the script file written 0600 for postgres, then removed", ops)
	}
}

// TestCommandUnlessDirMissing: in a dry run the dir may be made by an
// earlier step; the answer is unknown, not an error.
func TestCommandUnlessDirMissing(t *testing.T) {
	rt := testRuntime(hosts{"db": executors.ReadOnly(executors.NewLocal("db"))}, nil, nil)
	c := &Command{Argv: []string{"true"}, Dir: filepath.Join(t.TempDir(), "later"), Unless: "true"}
	chk, err := c.Check(context.Background(), rt)
	if err != nil || chk.Done || !chk.Unknown || !strings.Contains(chk.Reason, "does not exist yet") {
		t.Errorf("Check = %+v, %v; want unknown: dir does not exist yet", chk, err)
	}
}
