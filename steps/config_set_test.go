package steps

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/textedit"
)

func TestConfigSetValidate(t *testing.T) {
	tests := []struct {
		name string
		c    ConfigSet
		want []string
	}{
		{"shell", ConfigSet{File: "/etc/sysconfig/x", Format: "shell", Values: map[string]string{"A_1": "v"}}, nil},
		{"ini", ConfigSet{File: "/etc/x.ini", Format: "ini", Section: "db", Values: map[string]string{"host": "h", "pw": secret.Token("pw")}}, nil},
		{"properties", ConfigSet{File: "/etc/x.properties", Format: "properties", Values: map[string]string{"a b=c": "line\nbreak"}}, nil},
		{"no values", ConfigSet{File: "/x", Format: "shell"}, []string{"values: at least one"}},
		{"section outside ini", ConfigSet{File: "/x", Format: "shell", Section: "s", Values: map[string]string{"A": "1"}}, []string{"section: only ini"}},
		{"bad section", ConfigSet{File: "/x", Format: "ini", Section: "a]b", Values: map[string]string{"a": "1"}}, []string{"section: cannot be written"}},
		{"shell key", ConfigSet{File: "/x", Format: "shell", Values: map[string]string{"A-B": "1"}}, []string{"values: not a shell-style key"}},
		{"shell newline", ConfigSet{File: "/x", Format: "shell", Values: map[string]string{"A": "1\n2"}}, []string{"values: A holds a line break"}},
		{"ini key", ConfigSet{File: "/x", Format: "ini", Values: map[string]string{"a=b": "1"}}, []string{"values: cannot be an ini key"}},
		{"ini blanks", ConfigSet{File: "/x", Format: "ini", Values: map[string]string{"a": " 1"}}, []string{"values: starts or ends with blanks"}},
		{"relative", ConfigSet{File: "x", Format: "ini", Values: map[string]string{"a": "1"}}, []string{"file: not an absolute path"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblems(t, tt.c.Validate(), tt.want)
		})
	}
}

func TestConfigSetGolden(t *testing.T) {
	pw := secret.Token("db_pw")
	tests := []struct {
		name, input string
		spec        ConfigSet
	}{
		// host keeps its spacing, the multi-line options becomes one line,
		// the new key goes after the section's last entry.
		{"ini-section", "settings.ini", ConfigSet{Format: "ini", Section: "database", Values: map[string]string{
			"host": "db.example.com", "password": pw, "options": "sslmode=require", "sslrootcert": "/etc/pki/root.crt", "port": "5432"}}},
		{"ini-new-section", "settings.ini", ConfigSet{Format: "ini", Section: "replica", Values: map[string]string{"host": "r.example.com"}}},
		{"ini-global", "settings.ini", ConfigSet{Format: "ini", Values: map[string]string{"debug": "true", "verbose": "1"}}},
		{"ini-tight-and-colon", "settings.ini", ConfigSet{Format: "ini", Section: "logging", Values: map[string]string{"level": "debug"}}},
		{"properties", "extension.properties", ConfigSet{Format: "properties", Values: map[string]string{
			"multi": "one", "key with spaces": "w", "url": "jdbc:postgresql://db:5432/e?a=b", "new:key": " leading blank", "ünï": "ç\n"}}},
		// Both OPTIONS lines get the value, the trailing comment stays.
		{"shell", "sysconfig", ConfigSet{Format: "shell", Values: map[string]string{"OPTIONS": "-c $x", "PGPORT": "5433", "PGPASSWORD": pw}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testdataFile(t, "config_set", tt.input, t.TempDir(), 0o600)
			spec := tt.spec
			spec.File = p
			if ps := spec.Validate(); len(ps) > 0 {
				t.Fatalf("Validate: %v", ps)
			}
			rt := editRuntime(executors.NewLocal("engine"), secret.Values{"db_pw": testPassword})
			applyAndConverge(t, &spec, rt, p)
			got := readString(t, p)
			assertGolden(t, "config_set", tt.name+".golden", got)
			// The file's own reader sees exactly the wanted values.
			_, cur, err := spec.parse(got)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range spec.Values {
				want, _ := rt.Secrets.Reveal(v)
				if cur[k] != want {
					t.Errorf("%s reads back as %q, want %q", k, cur[k], want)
				}
			}
		})
	}
}

func TestConfigSetCreate(t *testing.T) {
	p := filepath.Join(t.TempDir(), "new.conf")
	rt := editRuntime(executors.NewLocal("engine"), secret.Values{"pw": "x y"})
	spec := &ConfigSet{File: p, Format: "shell", Values: map[string]string{"B": "2", "A_PASSWORD": secret.Token("pw")}}
	if _, err := spec.Apply(context.Background(), rt); err == nil || !strings.Contains(err.Error(), "create: true") {
		t.Fatalf("Apply without create = %v; want does not exist", err)
	}
	spec.Create = true
	acts, err := spec.Describe(context.Background(), rt)
	if err != nil || !strings.HasPrefix(acts[0].Summary, "create engine:"+p+" (mode 0600)") || !strings.Contains(acts[0].Diff, "--- /dev/null") {
		t.Fatalf("Describe = %+v, %v", acts, err)
	}
	out, err := spec.Apply(context.Background(), rt)
	if err != nil || !out.Changed {
		t.Fatalf("Apply = %+v, %v", out, err)
	}
	if got := readString(t, p); got != "A_PASSWORD=\"x y\"\nB=\"2\"\n" {
		t.Errorf("created %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600: the file holds a secret", fi.Mode().Perm())
	}
	if len(backupsOf(t, p)) != 0 {
		t.Errorf("a backup of a file that did not exist")
	}
	if chk, err := spec.Check(context.Background(), rt); err != nil || !chk.Done {
		t.Errorf("Check = %+v, %v; want done", chk, err)
	}
}

func TestConfigSetDescribeMasks(t *testing.T) {
	p := testdataFile(t, "config_set", "settings.ini", t.TempDir(), 0o600)
	rt := editRuntime(executors.NewLocal("engine"), secret.Values{"db_pw": testPassword})
	spec := &ConfigSet{File: p, Format: "ini", Section: "database", Values: map[string]string{"password": secret.Token("db_pw"), "host": "db"}}
	acts, err := spec.Describe(context.Background(), rt)
	if err != nil {
		t.Fatal(err)
	}
	d := acts[0].Diff
	for _, w := range []string{"-password = ********\n", "+password = <secret:db_pw>\n", "-host = localhost\n", "+host = db\n"} {
		if !strings.Contains(d, w) {
			t.Errorf("diff lacks %q:\n%s", w, d)
		}
	}
	if strings.Contains(d, "s3cr3t-old") || strings.Contains(d, testPassword) {
		t.Errorf("diff shows a password:\n%s", d)
	}
	// Unchanged, but a secret by name: still masked as context.
	spec.Values = map[string]string{"port": "5433"}
	acts, _ = spec.Describe(context.Background(), rt)
	if strings.Contains(acts[0].Diff, "s3cr3t-old") || !strings.Contains(acts[0].Diff, " password = ********") {
		t.Errorf("context line not masked:\n%s", acts[0].Diff)
	}
}

func TestConfigSetDryRun(t *testing.T) {
	p := testdataFile(t, "config_set", "settings.ini", t.TempDir(), 0o600)
	assertDryRun(t, &ConfigSet{File: p, Format: "ini", Section: "database", Values: map[string]string{"host": "db"}}, nil, p)
}

func TestConfigSetRefusesUnrepresentableSecret(t *testing.T) {
	p := testdataFile(t, "config_set", "settings.ini", t.TempDir(), 0o600)
	rt := editRuntime(executors.NewLocal("engine"), secret.Values{"pw": " padded "})
	spec := &ConfigSet{File: p, Format: "ini", Section: "database", Values: map[string]string{"password": secret.Token("pw")}}
	_, err := spec.Apply(context.Background(), rt)
	if err == nil || !strings.Contains(err.Error(), "password starts or ends with blanks") || strings.Contains(err.Error(), "padded") {
		t.Errorf("Apply = %v; want refused without the value", err)
	}
	if len(backupsOf(t, p)) != 0 {
		t.Errorf("refused edit took a backup")
	}
}

func TestPropertiesParse(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]string
		err      string
	}{
		{"separators", "a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf\n", map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": ""}, ""},
		{"comments", "# c\n! c\n   # c\n\nk=v\n", map[string]string{"k": "v"}, ""},
		{"continuation", "k = a, \\\n    b, \\\n  c\nn=1\n", map[string]string{"k": "a, b, c", "n": "1"}, ""},
		{"even backslashes end", "k=a\\\\\nn=1\n", map[string]string{"k": `a\`, "n": "1"}, ""},
		{"escapes", `k=\t\n\r\f\=\:\ \\\q`, map[string]string{"k": "\t\n\r\f=: \\q"}, ""},
		{"escaped key", `a\ b\=c\:d=v`, map[string]string{"a b=c:d": "v"}, ""},
		{"unicode", `k=\u00fc\uD83D\uDE00`, map[string]string{"k": "ü😀"}, ""},
		{"hash in value", "k=a#b!c\n", map[string]string{"k": "a#b!c"}, ""},
		{"last wins", "k=1\nk=2\n", map[string]string{"k": "2"}, ""},
		{"bad unicode", `k=\u12`, nil, `line 1: k: malformed \uXXXX`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := textedit.ParseProperties(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := textedit.PropertyValues(doc); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPropertiesRoundTrip(t *testing.T) {
	for _, s := range append(trickyPasswords, " lead", "a\nb\rc", "=:#!", "😀", "\x01") {
		k, err := textedit.EscapeProperty(s+"k", true)
		if err != nil {
			t.Fatal(err)
		}
		v, err := textedit.EscapeProperty(s, false)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := textedit.ParseProperties(k + "=" + v + "\n")
		if err != nil {
			t.Fatalf("%q: %v", s, err)
		}
		if got := textedit.PropertyValues(doc); len(got) != 1 || got[s+"k"] != s {
			t.Errorf("%q round-trips as %q", s, got)
		}
	}
	if _, err := textedit.EscapeProperty("\xff", false); err == nil {
		t.Errorf("invalid UTF-8 accepted")
	}
}

func TestINIParse(t *testing.T) {
	in := "top = 1\n[a]\nk = v\nk2=  spaced out  \n; c\n# c\nbare-flag\nmulti = x\n  y\n\n[ b ]\nk: w\n"
	doc, err := textedit.ParseINI(in)
	if err != nil {
		t.Fatal(err)
	}
	for section, want := range map[string]map[string]string{
		"":  {"top": "1"},
		"a": {"k": "v", "k2": "spaced out", "bare-flag": "", "multi": "x\ny"},
		"b": {"k": "w"},
	} {
		if got := textedit.INIValues(doc, section); !reflect.DeepEqual(got, want) {
			t.Errorf("[%s] = %q, want %q", section, got, want)
		}
	}
	for _, bad := range []string{"[a\nk=v\n", "[a]\n= v\n"} {
		if _, err := textedit.ParseINI(bad); err == nil {
			t.Errorf("ParseINI(%q) succeeded", bad)
		}
	}
}
