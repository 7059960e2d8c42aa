package steps

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/textedit"
)

// trickyPasswords are values that break naive quoting.
var trickyPasswords = []string{
	`p"a"ss`, `back\slash\`, `dol$ar`, `${HOME}`, `$`, `with space`, `hash#tag`, `" #`,
	`'single'`, "tab\tin", `ünïcødé`, `\"$\`, ``, `a=b`, `}{`,
}

// TestShellConfParse holds textedit.ParseShellConf to every rule of the engine's
// reader (ShellLikeConfd / ovirt_engine.configfile.ConfigFile).
func TestShellConfParse(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       map[string]string
		unresolved map[string][]string
		err        string
	}{
		{"plain", "A=plain\n", map[string]string{"A": "plain"}, nil, ""},
		{"quoted", `A="two words"`, map[string]string{"A": "two words"}, nil, ""},
		{"quotes toggle", `A=ab"c d"ef"g"`, map[string]string{"A": "abc defg"}, nil, ""},
		{"escaped quote", `A="a\"b"`, map[string]string{"A": `a"b`}, nil, ""},
		{"escaped backslash", `A="a\\b"`, map[string]string{"A": `a\b`}, nil, ""},
		{"escaped space unquoted", `A=a\ b`, map[string]string{"A": "a b"}, nil, ""},
		{"escaped dollar", `A="\${HOME}"`, map[string]string{"A": "${HOME}"}, nil, ""},
		{"escape any char", `A=\a\b\c`, map[string]string{"A": "abc"}, nil, ""},
		{"expansion", "A=1\nB=\"${A}2 ${A}\"\n", map[string]string{"A": "1", "B": "12 1"}, nil, ""},
		{"expansion unquoted", "A=x\nB=${A}y\n", map[string]string{"A": "x", "B": "xy"}, nil, ""},
		{"expansion sees earlier only", "B=${A}\nA=1\n", map[string]string{"A": "1", "B": ""}, map[string][]string{"B": {"A"}}, ""},
		{"unknown name", `B="${NOPE}x"`, map[string]string{"B": "x"}, map[string][]string{"B": {"NOPE"}}, ""},
		{"reassigned clears unresolved", "B=${NOPE}\nB=ok\n", map[string]string{"B": "ok"}, nil, ""},
		{"stray dollar", `A=$x`, nil, nil, "line 1: A: a $ must start ${NAME}"},
		{"stray dollar quoted", `A="cost $5"`, nil, nil, "must start ${NAME}"},
		{"dollar at end", "A=\n\nB=a$\n", nil, nil, "line 3: B:"},
		{"unclosed brace", `A=${B`, nil, nil, "without a closing }"},
		{"unquoted space ends", `A=val ue`, map[string]string{"A": "val"}, nil, ""},
		{"unquoted hash ends", `A=val#ue`, map[string]string{"A": "val"}, nil, ""},
		{"quoted hash and comment", `A="v#l" # note`, map[string]string{"A": "v#l"}, nil, ""},
		{"space right after =", `A= x`, map[string]string{"A": ""}, nil, ""},
		{"empty", "A=\nB=\"\"\n", map[string]string{"A": "", "B": ""}, nil, ""},
		{"comments and blanks", "# c\n\n   \n   # indented\nA=1\n", map[string]string{"A": "1"}, nil, ""},
		{"leading blanks", "  \tA=1", map[string]string{"A": "1"}, nil, ""},
		{"last wins", "A=1\nA=2\n", map[string]string{"A": "2"}, nil, ""},
		{"single quotes are literal", `A='x'`, map[string]string{"A": "'x'"}, nil, ""},
		{"unclosed quote", `A="abc`, map[string]string{"A": "abc"}, nil, ""},
		{"trailing backslash", `A=abc\`, map[string]string{"A": "abc"}, nil, ""},
		{"crlf", "A=\"x\"\r\nB=y\r\n", map[string]string{"A": "x", "B": "y"}, nil, ""},
		{"blank before =", "A =1", nil, nil, "line 1: not KEY=VALUE"},
		{"export", "export A=1", nil, nil, "not KEY=VALUE"},
		{"bad key", "A-B=1", nil, nil, "not KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := textedit.ParseShellConf(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(conf.Values, tt.want) {
				t.Errorf("values = %q, want %q", conf.Values, tt.want)
			}
			want := tt.unresolved
			if want == nil {
				want = map[string][]string{}
			}
			if !reflect.DeepEqual(conf.Unresolved, want) {
				t.Errorf("unresolved = %q, want %q", conf.Unresolved, want)
			}
		})
	}
}

// TestShellQuoteRoundTrip: whatever textedit.QuoteShellValue writes, the engine's
// rules read back unchanged, with a comment after it or not.
func TestShellQuoteRoundTrip(t *testing.T) {
	for _, pw := range trickyPasswords {
		q, err := textedit.QuoteShellValue("K", pw)
		if err != nil {
			t.Errorf("quote %q: %v", pw, err)
			continue
		}
		for _, line := range []string{"K=" + q, "K=" + q + " # comment", "K=" + q + "#c"} {
			conf, err := textedit.ParseShellConf(line + "\n")
			if err != nil {
				t.Errorf("%s: %v", line, err)
				continue
			}
			if got := conf.Values["K"]; got != pw {
				t.Errorf("%s reads back as %q, want %q", line, got, pw)
			}
		}
	}
}

func TestShellQuoteRefuses(t *testing.T) {
	for _, v := range []string{"a\nb", "a\rb", "\xff\xfe"} {
		_, err := textedit.QuoteShellValue("ENGINE_DB_PASSWORD", v)
		if err == nil {
			t.Errorf("QuoteShellValue(%q) succeeded; want refused", v)
			continue
		}
		if !strings.Contains(err.Error(), "ENGINE_DB_PASSWORD") || strings.Contains(err.Error(), v) {
			t.Errorf("error %q should name the key and not hold the value", err)
		}
	}
}

func TestJdbcURL(t *testing.T) {
	const nv = "sslfactory=org.postgresql.ssl.NonValidatingFactory"
	tests := []struct {
		host              string
		secured, validate bool
		want              string
	}{
		{"db.example.com", false, false, "jdbc:postgresql://db.example.com:5432/engine?" + nv},
		{"db.example.com", true, false, "jdbc:postgresql://db.example.com:5432/engine?ssl=true&" + nv},
		{"db.example.com", true, true, "jdbc:postgresql://db.example.com:5432/engine?ssl=true"},
		{"fd00::5", false, false, "jdbc:postgresql://[fd00::5]:5432/engine?" + nv},
	}
	for _, tt := range tests {
		got := jdbcURL(tt.host, "5432", "engine", tt.secured, tt.validate)
		if got != tt.want {
			t.Errorf("jdbcURL(%s, %v, %v) = %s, want %s", tt.host, tt.secured, tt.validate, got, tt.want)
		}
		h, p, d, err := parseJdbcURL(got)
		if err != nil || h != tt.host || p != "5432" || d != "engine" {
			t.Errorf("parseJdbcURL(%s) = %s %s %s %v", got, h, p, d, err)
		}
	}
	for _, bad := range []string{"jdbc:mysql://h/db", "jdbc:postgresql://h:5432", "jdbc:postgresql://:5432/db"} {
		if _, _, _, err := parseJdbcURL(bad); err == nil {
			t.Errorf("parseJdbcURL(%s) succeeded", bad)
		}
	}
}

func TestOvirtDbConfValidate(t *testing.T) {
	tests := []struct {
		name string
		c    OvirtDbConf
		want []string
	}{
		{"minimal", OvirtDbConf{File: "/etc/ovirt-engine/engine.conf.d/10-setup-database.conf", Host: "db"}, nil},
		{"full", OvirtDbConf{File: "/etc/x.conf", Prefix: "DWH_DB", Host: "fd00::1", Port: 5433, Database: "h", User: "u",
			Password: secret.Token("pw"), Secured: true, SecuredValidation: true}, nil},
		{"properties by name", OvirtDbConf{File: "/etc/ovirt-engine/aaa/internal.properties", Prefix: "DWH_DB"}, []string{"prefix: properties"}},
		{"relative", OvirtDbConf{File: "etc/x.conf"}, []string{"file: not an absolute path"}},
		{"directory", OvirtDbConf{File: "/etc/"}, []string{"file: names a directory"}},
		{"port", OvirtDbConf{File: "/x", Port: 70000}, []string{"port: not a TCP port"}},
		{"host", OvirtDbConf{File: "/x", Host: "db/x"}, []string{"host: not a host"}},
		{"database", OvirtDbConf{File: "/x", Database: "a?b"}, []string{"database: cannot be used"}},
		{"password newline", OvirtDbConf{File: "/x", Password: "a\nb"}, []string{"password: line break"}},
		{"validation without tls", OvirtDbConf{File: "/x", SecuredValidation: true}, []string{"secured_validation: needs secured"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblems(t, tt.c.Validate(), tt.want)
		})
	}
}

// assertProblems compares problems with "field: message substring"s.
func assertProblems(t *testing.T, got []Problem, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Validate() = %v, want %d problem(s) %v", got, len(want), want)
	}
	for i, w := range want {
		field, msg, _ := strings.Cut(w, ": ")
		if got[i].Field != field || !strings.Contains(got[i].Message, msg) {
			t.Errorf("problem %d = %+v, want field %q and message containing %q", i, got[i], field, msg)
		}
	}
}

const testPassword = `n3w "pa$$" \ #word`

// TestOvirtDbConfGolden edits real engine-setup files and compares with
// golden results, then holds each edit to the common rules (backup, mode,
// idempotency).
func TestOvirtDbConfGolden(t *testing.T) {
	pw := secret.Token("engine_db_pw")
	tests := []struct {
		name, input string
		spec        OvirtDbConf
	}{
		// The guide's bug: only the host changes, and the URL must follow.
		{"host-only", "10-setup-database.conf", OvirtDbConf{Host: "db.example.com"}},
		{"everything", "10-setup-database.conf", OvirtDbConf{Host: "db.example.com", Port: 5433, Database: "engine2",
			User: "engine_user", Password: pw, Secured: true, SecuredValidation: true}},
		{"secured-not-validated", "10-setup-database.conf", OvirtDbConf{Secured: true}},
		{"dwh-prefix", "dwhd-10-setup-database.conf", OvirtDbConf{Prefix: "DWH_DB", Host: "dwh-db.example.com", Password: pw}},
		{"dwhd-engine-prefix", "dwhd-10-setup-database.conf", OvirtDbConf{Host: "db.example.com"}},
		// Keycloak's: only its database keys change, not its own settings.
		{"keycloak", "12-setup-keycloak.conf", OvirtDbConf{Prefix: "KEYCLOAK_DB", Host: "db.example.com"}},
		{"legacy-references", "legacy-10-setup-database.conf", OvirtDbConf{Host: "db.example.com"}},
		{"partial", "partial.conf", OvirtDbConf{User: "engine"}},
		{"properties", "internal.properties", OvirtDbConf{Host: "db.example.com", Password: pw}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testdataFile(t, "ovirt_db_conf", tt.input, t.TempDir(), 0o640)
			spec := tt.spec
			spec.File = p
			if ps := spec.Validate(); len(ps) > 0 {
				t.Fatalf("Validate: %v", ps)
			}
			rt := editRuntime(executors.NewLocal("engine"), secret.Values{"engine_db_pw": testPassword})
			applyAndConverge(t, &spec, rt, p)
			assertGolden(t, "ovirt_db_conf", tt.name+".golden", readString(t, p))
		})
	}
}

// TestOvirtDbConfVerifiesEngineView reads the edited file back the way the
// engine would and checks every value, the tricky password included.
func TestOvirtDbConfVerifiesEngineView(t *testing.T) {
	p := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", t.TempDir(), 0o640)
	for _, pw := range trickyPasswords {
		if pw == "" {
			continue // empty means "keep the file's"
		}
		rt := editRuntime(executors.NewLocal("engine"), secret.Values{"pw": pw})
		spec := &OvirtDbConf{File: p, Host: "db.example.com", Password: secret.Token("pw")}
		if _, err := spec.Apply(context.Background(), rt); err != nil {
			t.Fatalf("Apply with %q: %v", pw, err)
		}
		conf, err := textedit.ParseShellConf(readString(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if got := conf.Values["ENGINE_DB_PASSWORD"]; got != pw {
			t.Errorf("password reads back as %q, want %q", got, pw)
		}
		want := "jdbc:postgresql://db.example.com:5432/engine?sslfactory=org.postgresql.ssl.NonValidatingFactory"
		if got := conf.Values["ENGINE_DB_URL"]; got != want {
			t.Errorf("URL = %s, want %s", got, want)
		}
		if conf.Values["ENGINE_DB_MAX_CONNECTIONS"] != "150" {
			t.Errorf("an unrelated key changed: %q", conf.Values)
		}
	}
}

func TestOvirtDbConfDescribeMasksPasswords(t *testing.T) {
	const oldPW = "xoL4r3VtTNxQyD5jbrTmlx"
	tests := []struct {
		name   string
		input  string
		spec   OvirtDbConf
		inDiff []string
	}{
		{"password changes", "10-setup-database.conf", OvirtDbConf{Host: "db.example.com", Password: secret.Token("engine_db_pw")},
			[]string{
				`-ENGINE_DB_PASSWORD="********"`, `+ENGINE_DB_PASSWORD="<secret:engine_db_pw>"`,
				`-ENGINE_DB_HOST="localhost"`, `+ENGINE_DB_HOST="db.example.com"`,
				`+ENGINE_DB_URL="jdbc:postgresql://db.example.com:5432/engine?sslfactory=org.postgresql.ssl.NonValidatingFactory"`,
			}},
		// The password is only context here, and still masked.
		{"password is context", "10-setup-database.conf", OvirtDbConf{Database: "engine2"},
			[]string{` ENGINE_DB_PASSWORD="********"`, `+ENGINE_DB_DATABASE="engine2"`}},
		{"literal password in the plan", "10-setup-database.conf", OvirtDbConf{Password: "plain-in-plan"},
			[]string{`-ENGINE_DB_PASSWORD="********"`, `+ENGINE_DB_PASSWORD="<hidden>"`}},
		{"properties", "internal.properties", OvirtDbConf{Password: secret.Token("engine_db_pw")},
			[]string{"-config.datasource.dbpassword=********", "+config.datasource.dbpassword=<secret:engine_db_pw>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testdataFile(t, "ovirt_db_conf", tt.input, t.TempDir(), 0o640)
			spec := tt.spec
			spec.File = p
			rt := editRuntime(executors.NewLocal("engine"), secret.Values{"engine_db_pw": testPassword})
			acts, err := spec.Describe(context.Background(), rt)
			if err != nil || len(acts) != 1 {
				t.Fatalf("Describe = %+v, %v", acts, err)
			}
			a := acts[0]
			for _, w := range tt.inDiff {
				if !strings.Contains(a.Diff, w) {
					t.Errorf("diff lacks %q:\n%s", w, a.Diff)
				}
			}
			for _, s := range []string{a.Summary, a.Diff} {
				for _, leak := range []string{oldPW, testPassword, "plain-in-plan"} {
					if strings.Contains(s, leak) {
						t.Errorf("%q shows a password:\n%s", leak, s)
					}
				}
				if secret.Contains(s) {
					t.Errorf("raw secret token in %q", s)
				}
			}
			if !strings.HasPrefix(a.Summary, "edit engine:"+p+": ") || !strings.Contains(a.Summary, backupInfix) {
				t.Errorf("Summary = %q", a.Summary)
			}
		})
	}
}

func TestOvirtDbConfDryRun(t *testing.T) {
	p := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", t.TempDir(), 0o640)
	secrets := secret.Values{"engine_db_pw": testPassword}
	assertDryRun(t, &OvirtDbConf{File: p, Host: "db.example.com", Password: secret.Token("engine_db_pw")}, secrets, p)
}

// TestOvirtDbConfRefusals: what cannot be done safely fails before any
// write, and says why without showing the value.
func TestOvirtDbConfRefusals(t *testing.T) {
	tests := []struct {
		name, content string
		spec          OvirtDbConf
		secret        string
		want          string
	}{
		{"password with a line break", "", OvirtDbConf{Password: secret.Token("pw")}, "line1\nline2", "ENGINE_DB_PASSWORD holds a line break"},
		{"host only elsewhere", "ENGINE_DB_HOST=\"${ENGINE_FQDN}\"\nENGINE_DB_DATABASE=\"engine\"\n", OvirtDbConf{User: "u"}, "", "refers to ${ENGINE_FQDN}"},
		{"no host", "ENGINE_DB_DATABASE=\"engine\"\n", OvirtDbConf{}, "", "does not set ENGINE_DB_HOST"},
		{"unparsable file", "ENGINE_DB_HOST=$HOST\n", OvirtDbConf{Host: "h"}, "", "line 1: ENGINE_DB_HOST: a $ must start"},
		{"unsecret secret", "", OvirtDbConf{Password: secret.Token("missing")}, "", "secret missing was not resolved"},
		{"properties without url", "config.datasource.dbuser=engine\n", OvirtDbConf{Format: "properties", User: "x"}, "", "does not set config.datasource.jdbcurl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := testdataFile(t, "ovirt_db_conf", "10-setup-database.conf", dir, 0o640)
			if tt.content != "" {
				writeFile(t, p, []byte(tt.content), 0o640)
			}
			before := readString(t, p)
			spec := tt.spec
			spec.File = p
			rt := editRuntime(executors.NewLocal("engine"), secret.Values{"pw": tt.secret})
			_, err := spec.Apply(context.Background(), rt)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "engine:"+p) {
				t.Fatalf("Apply = %v; want an error naming engine:%s and saying %q", err, p, tt.want)
			}
			if tt.secret != "" && strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the error shows the secret: %v", err)
			}
			if readString(t, p) != before || len(backupsOf(t, p)) != 0 {
				t.Errorf("a refused edit wrote something")
			}
		})
	}
}
