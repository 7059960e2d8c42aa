package plan_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
)

// secretsPlan uses every kind of source; "spare" is declared but unused.
const secretsPlan = `version: 1
name: t
secrets:
  from_env: {env: FROM_ENV}
  from_file: {file: pw.txt}
  from_prompt: {prompt: "Password for postgres on db: "}
  spare: {env: SPARE_UNSET}
hosts:
  db: {address: db}
steps:
  - id: a
    host: db
    shell: {run: psql, stdin: "${from_env} ${from_file}"}
on_failure:
  - id: b
    host: db
    shell: {run: psql, stdin: "${from_prompt}"}
`

// loadSecretsPlan writes secretsPlan and pw.txt (with mode) to a temp dir.
func loadSecretsPlan(t *testing.T, pw string, mode os.FileMode) *plan.Plan {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(file, []byte(secretsPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	if pw != "" {
		pwFile := filepath.Join(dir, "pw.txt")
		if err := os.WriteFile(pwFile, []byte(pw), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(pwFile, mode); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	p, err := plan.Load(file, testRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestUsedSecrets(t *testing.T) {
	p := loadSecretsPlan(t, "", 0)
	if got, want := p.UsedSecrets(), []string{"from_env", "from_file", "from_prompt"}; !reflect.DeepEqual(got, want) {
		t.Errorf("UsedSecrets = %v, want %v", got, want)
	}
}

func TestResolveSecrets(t *testing.T) {
	p := loadSecretsPlan(t, "s3cret\r\nsecond line\n", 0o640)
	var asked []string
	prompt := func(text string) (string, error) {
		asked = append(asked, text)
		return "typed\n", nil
	}
	vals, err := p.ResolveSecrets(env(map[string]string{"FROM_ENV": "e-value"}), prompt)
	if err != nil {
		t.Fatal(err)
	}
	want := secret.Values{"from_env": "e-value", "from_file": "s3cret", "from_prompt": "typed"}
	if !reflect.DeepEqual(vals, want) {
		t.Errorf("values = %v, want %v", vals, want)
	}
	if want := []string{"Password for postgres on db: "}; !reflect.DeepEqual(asked, want) {
		t.Errorf("prompts = %q, want %q", asked, want)
	}
	// The values reveal the tokens the steps hold.
	got, err := vals.Reveal(p.Steps[0].Spec.(*shellSpec).Stdin)
	if err != nil || got != "e-value s3cret" {
		t.Errorf("Reveal = %q, %v", got, err)
	}
}

func TestResolveSecretsErrors(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("file modes")
	}
	tests := []struct {
		name    string
		pw      string
		mode    os.FileMode
		env     map[string]string
		prompt  plan.Prompter
		want    []string // each line of the error, with DIR for the temp dir
		wantErr error    // errors.Is target, if any
	}{
		{
			name: "everything missing at once, nobody asked",
			env:  map[string]string{},
			prompt: func(string) (string, error) {
				panic("prompted although the run cannot start")
			},
			want: []string{
				"secret from_env: environment variable FROM_ENV is not set or empty",
				"secret from_file: open DIR/pw.txt: no such file or directory",
			},
			wantErr: fs.ErrNotExist,
		},
		{
			name: "world-readable file and no terminal",
			pw:   "x\n", mode: 0o644,
			env: map[string]string{"FROM_ENV": "e"},
			want: []string{
				"secret from_file: file DIR/pw.txt is readable by every user (mode 0644); run chmod o-r DIR/pw.txt",
				"secret from_prompt needs a terminal prompt; use env or file in non-interactive runs",
			},
		},
		{
			name: "empty first line",
			pw:   "\nsecond\n", mode: 0o600,
			env: map[string]string{"FROM_ENV": "e"},
			want: []string{
				"secret from_file: file DIR/pw.txt: the first line is empty",
				"secret from_prompt needs a terminal prompt; use env or file in non-interactive runs",
			},
		},
		{
			name: "prompt fails",
			pw:   "x", mode: 0o600,
			env:     map[string]string{"FROM_ENV": "e"},
			prompt:  func(string) (string, error) { return "", fs.ErrClosed },
			want:    []string{"secret from_prompt: file already closed"},
			wantErr: fs.ErrClosed,
		},
		{
			name: "empty answer",
			pw:   "x", mode: 0o600,
			env:    map[string]string{"FROM_ENV": "e"},
			prompt: func(string) (string, error) { return "\n", nil },
			want:   []string{"secret from_prompt: the answer is empty"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadSecretsPlan(t, tt.pw, tt.mode)
			vals, err := p.ResolveSecrets(env(tt.env), tt.prompt)
			if err == nil {
				t.Fatalf("ResolveSecrets = %v, want an error", vals)
			}
			msg := strings.ReplaceAll(err.Error(), filepath.Dir(p.File), "DIR")
			if got := strings.Split(msg, "\n"); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("error:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error does not wrap %v", tt.wantErr)
			}
			if strings.Contains(err.Error(), "x\n") {
				t.Errorf("error shows a secret value")
			}
		})
	}
}

func TestSecretFilePaths(t *testing.T) {
	home := t.TempDir()
	t.Setenv("HOME", home)
	if err := os.WriteFile(filepath.Join(home, "pw"), []byte("from-home\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(t.TempDir(), "abs-pw")
	if err := os.WriteFile(abs, []byte("from-abs"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"~/pw", abs} {
		src := strings.Replace(secretsPlan, "pw.txt", path, 1)
		src = strings.Replace(src, `"${from_env} ${from_file}"`, `"${from_file}"`, 1)
		src = strings.Replace(src, `"${from_prompt}"`, `"${from_file}"`, 1)
		p := mustParse(t, src, nil)
		vals, err := p.ResolveSecrets(env(nil), nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if want := map[string]string{"~/pw": "from-home", abs: "from-abs"}[path]; vals["from_file"] != want {
			t.Errorf("%s: value %q, want %q", path, vals["from_file"], want)
		}
	}
}

// TestSecretsFromConfigFiles: a secret may be a KEY="value" of a config
// file, on the workstation (read by ResolveSecrets) or on a plan host
// (left to the runner, which reads it once connected).
func TestSecretsFromConfigFiles(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "10-setup-database.conf")
	if err := os.WriteFile(conf, []byte("ENGINE_DB_HOST=\"localhost\"\nENGINE_DB_PASSWORD=\"s3cr\\\"et\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `version: 1
name: t
secrets:
  engine: {file: "` + conf + `", key: ENGINE_DB_PASSWORD}
  dwh: {host: db, file: /etc/ovirt-engine/engine.conf.d/10-setup-dwh-database.conf, key: DWH_DB_PASSWORD}
hosts:
  db: {address: db}
steps:
  - {id: a, host: db, shell: {run: psql, stdin: "${engine} ${dwh}"}}
`
	p, errs := parse(t, src, nil)
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	if got := p.Secrets["dwh"]; got != (plan.SecretSource{Host: "db", File: "/etc/ovirt-engine/engine.conf.d/10-setup-dwh-database.conf", Key: "DWH_DB_PASSWORD"}) {
		t.Errorf("dwh source: %+v", got)
	}
	vals, err := p.ResolveSecrets(func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if vals["engine"] != `s3cr"et` {
		t.Errorf("engine = %q", vals["engine"])
	}
	if _, ok := vals["dwh"]; ok {
		t.Errorf("a host secret was resolved on the workstation")
	}
	if _, err := plan.SecretFromText("A=1\n", "B", "x.conf"); err == nil || err.Error() != "x.conf does not set B" {
		t.Errorf("a key the file lacks: %v", err)
	}

	bad := `version: 1
name: t
secrets:
  a: {env: A, key: K}
  b: {prompt: x, host: db}
  c: {host: dbb, file: /x}
  d: {host: db, file: x.conf, key: "K-1"}
hosts:
  db: {address: db}
steps:
  - {id: s, host: db, shell: {run: psql, stdin: "${a}${b}${c}${d}"}}
`
	_, errs = parse(t, bad, nil)
	want := []string{
		`plan.yaml:4:15: secrets.a.key: goes with file`,
		`plan.yaml:5:18: secrets.b.host: goes with file`,
		`plan.yaml:6:13: secrets.c.host: no host "dbb" (did you mean "db"?)`,
		`plan.yaml:7:17: secrets.d.file: a file on host db needs an absolute path`,
		`plan.yaml:7:36: secrets.d.key: "K-1" is not a variable name`,
	}
	if !reflect.DeepEqual(errs, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(want, "\n"))
	}
}
