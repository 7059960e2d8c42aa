package plan_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// badBody is one wrong way to write a kind's body: the field the loader
// must name, and words its message must hold.
type badBody struct {
	body, field, msg string
}

// builtinKindCases holds, for every built-in kind, one body the loader
// accepts and the wrong ones it must refuse, each at its field.
var builtinKindCases = []struct {
	kind string
	good string
	bad  []badBody
}{
	{"command", "argv: [ls]", []badBody{
		{"dir: /tmp", "command", "give the command as argv"},
		{"argv: [ls]\nscript: ls", "command.script", "not both"},
		{"argv: [ls]\ncreates: rel", "command.creates", "not an absolute path"},
	}},
	{"config_set", "file: /etc/x\nformat: shell\nvalues: {A: b}", []badBody{
		{"file: /etc/x\nformat: toml\nvalues: {A: b}", "config_set.format", `"toml" is not one of shell, ini, properties`},
		{"file: rel\nformat: shell\nvalues: {A: b}", "config_set.file", "not an absolute path"},
		{"file: /etc/x\nformat: shell", "config_set", `missing required key "values"`},
	}},
	{"copy", "from: a:/x\nto: b:/y", []badBody{
		{"from: a:/x\nto: c:/y", "copy.to", `unknown host "c"`},
		{"from: a:/x\nto: b:rel", "copy.to", "must be absolute"},
	}},
	{"engine_backup", "mode: backup\nfile: /b.tar", []badBody{
		{"mode: frob\nfile: /b.tar", "engine_backup.mode", `"frob" is not one of backup, restore, verify`},
		{"mode: backup\nfile: rel", "engine_backup.file", "not an absolute path"},
	}},
	{"firewall", "port: 5432", []badBody{
		{"port: 70000", "firewall.port", "not a port number"},
		{"port: 5432\nproto: icmp", "firewall.proto", `"icmp" is not one of tcp, udp`},
	}},
	{"line", "file: /etc/x\nline: a=b", []badBody{
		{"file: rel\nline: a=b", "line.file", "not an absolute path"},
		{"file: /etc/x\nline: a=b\nregexp: '('", "line.regexp", "missing closing )"},
	}},
	{"ovirt_db_conf", "file: /etc/x\nhost: db", []badBody{
		{"file: rel\nhost: db", "ovirt_db_conf.file", "not an absolute path"},
		{"host: db", "ovirt_db_conf", `missing required key "file"`},
	}},
	{"ovirt_he_maintenance", "mode: global", []badBody{
		{"mode: local", "ovirt_he_maintenance.mode", `"local" is not one of global, none`},
		{"timeout: 5m", "ovirt_he_maintenance", `missing required key "mode"`},
	}},
	{"package", "names: [postgresql]", []badBody{
		{"names: []", "package.names", "must not be empty"},
		{"names: [x]\nstate: gone", "package.state", `"gone" is not one of present, absent`},
	}},
	{"pg_capture", "action: start\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}", []badBody{
		{"action: go\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}", "pg_capture.action", `"go" is not one of start, apply, cancel`},
		{"action: start\nsource: {host: z, database: engine}\ntarget: {host: b, database: engine}", "pg_capture.source.host", `unknown host "z"`},
	}},
	{"pg_check", "database: engine\ndatabase_empty: true", []badBody{
		{"database: engine", "pg_check", "nothing to check"},
		{"settings: {max_connections: {at_least: x}}", "pg_check.settings.max_connections", "want a string, got a mapping"},
	}},
	{"pg_conf", "settings: {max_connections: 150}", []badBody{
		{"settings: {}", "pg_conf.settings", "must not be empty"},
		{"settings: {max_connections: 150}\napply_with: magic", "pg_conf.apply_with", `"magic" is not one of none, reload, restart`},
	}},
	{"pg_database", "name: engine\nowner: engine", []badBody{
		{"name: ''", "pg_database.name", "must not be empty"},
		{"owner: engine", "pg_database", `missing required key "name"`},
	}},
	{"pg_dump", "database: engine\nfile: /d.dump", []badBody{
		{"database: engine\nfile: rel", "pg_dump.file", "not an absolute path"},
		{"database: engine\nfile: /d.dump\nformat: x", "pg_dump.format", `"x" is not one of custom, directory`},
	}},
	{"pg_hba", "type: host\ndatabase: engine\nuser: engine\naddress: 0.0.0.0/0\nmethod: scram-sha-256", []badBody{
		{"type: hostx\ndatabase: engine\nuser: engine\naddress: 0.0.0.0/0\nmethod: md5", "pg_hba.type", `"hostx" is not one of local, host`},
		{"type: host\ndatabase: engine\nuser: engine\nmethod: md5", "pg_hba.address", "give the client address"},
		{"type: host\ndatabase: engine\nuser: engine\naddress: 0.0.0.0/0\nmethod: plain", "pg_hba.method", `"plain" is not one of scram-sha-256`},
	}},
	{"pg_init", "method: postgresql-setup", []badBody{
		{"method: magic", "pg_init.method", `"magic" is not one of auto, postgresql-setup, service, initdb`},
		{"data_dir: rel", "pg_init.data_dir", "not a clean absolute directory"},
	}},
	{"pg_replicate", "action: start\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}\npublisher: {host: 10.0.0.1, user: rep}", []badBody{
		{"action: go\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}", "pg_replicate.action", `"go" is not one of start, finish, cancel`},
		{"action: start\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}\npublisher: {user: rep}", "pg_replicate.publisher.host", "action start needs the source server's address"},
		{"action: start\nsource: {host: a, database: engine}\ntarget: {host: b, database: engine}\npublisher: {host: 10.0.0.1}", "pg_replicate.publisher.user", "action start needs a role with REPLICATION"},
	}},
	{"pg_restore", "database: engine\nfile: /d.dump", []badBody{
		{"database: engine\nfile: rel", "pg_restore.file", "not an absolute path"},
		{"file: /d.dump", "pg_restore", `missing required key "database"`},
	}},
	{"pg_role", "name: engine", []badBody{
		{"name: engine\npassword_encryption: rot13", "pg_role.password_encryption", `"rot13" is not one of scram-sha-256, md5`},
		{"name: ''", "pg_role.name", "must not be empty"},
	}},
	{"pg_stream", "source: {host: a, database: engine}\ntarget: {host: b, database: engine}", []badBody{
		{"source: {host: a, database: engine}\ntarget: {host: a, database: engine}", "pg_stream.target", "source and target are the same database"},
		{"source: {host: a}\ntarget: {host: b, database: engine}", "pg_stream.source", `missing required key "database"`},
	}},
	{"pg_verify", "source: {host: a, database: engine}\ntarget: {host: b, database: engine}", []badBody{
		{"source: {host: a, database: engine}\ntarget: {host: b, database: engine}\naction: frob", "pg_verify.action", `"frob" is not one of compare, baseline, cancel`},
		{"source: {host: a, database: engine}", "pg_verify", `missing required key "target"`},
	}},
	{"service", "name: ovirt-engine\nstate: stopped", []badBody{
		{"name: ovirt-engine", "service", "give state, enabled or both"},
		{"name: ovirt-engine\nstate: paused", "service.state", `"paused" is not one of started, stopped, restarted, reloaded`},
	}},
	{"wait", "tcp: db:5432", []badBody{
		{"timeout: 5s", "wait", "give what to wait for"},
		{"tcp: db", "wait.tcp", "want HOST:PORT"},
	}},
}

// kindStepLine is the line of the kind's key in kindPlan's output; the
// body starts on the next.
const kindStepLine = 9

// kindPlan wraps a kind's body in a plan of one step on host a, with a
// second host b for the kinds that span two.
func kindPlan(kind, body string) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: t\nhosts:\n  a: {address: 10.0.0.1}\n  b: {address: 10.0.0.2}\n")
	b.WriteString("steps:\n  - id: s\n    host: a\n    " + kind + ":\n")
	for _, line := range strings.Split(body, "\n") {
		b.WriteString("      " + line + "\n")
	}
	return b.String()
}

// fieldLine is the plan line a problem with field must point at: the line
// of the body's key the field is in (the bodies here keep nested keys on
// their parent's line), or the kind's own line when the body does not have
// it (a missing key, a problem with the whole body).
func fieldLine(body, field string) int {
	parts := strings.Split(field, ".")
	if len(parts) < 2 {
		return kindStepLine
	}
	for i, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, parts[1]+":") {
			return kindStepLine + 1 + i
		}
	}
	return kindStepLine
}

func TestBuiltinKinds(t *testing.T) {
	reg := steps.Builtin()
	for _, c := range builtinKindCases {
		t.Run(c.kind, func(t *testing.T) {
			if _, ok := reg.Lookup(c.kind); !ok {
				t.Fatalf("%s is not a built-in kind", c.kind)
			}
			if _, err := plan.Parse("plan.yaml", []byte(kindPlan(c.kind, c.good)), reg, nil); err != nil {
				t.Fatalf("the good body was refused:\n%v", err)
			}
			for _, bad := range c.bad {
				_, err := plan.Parse("plan.yaml", []byte(kindPlan(c.kind, bad.body)), reg, nil)
				var pe *plan.Error
				if !errors.As(err, &pe) {
					t.Errorf("%q: got %v, want a plan error", bad.body, err)
					continue
				}
				if pe.Step != "s" || pe.Field != bad.field || !strings.Contains(pe.Msg, bad.msg) {
					t.Errorf("%q: got step %q field %q: %s\nwant step \"s\" field %q with %q", bad.body, pe.Step, pe.Field, pe.Msg, bad.field, bad.msg)
				}
				if want := fieldLine(bad.body, bad.field); pe.File != "plan.yaml" || pe.Line != want {
					t.Errorf("%q: the problem is at %s:%d, want plan.yaml:%d", bad.body, pe.File, pe.Line, want)
				}
			}
		})
	}
}

// TestBuiltinKindsAllCovered keeps the table whole: a new kind gets its
// good body and at least two bad ones.
func TestBuiltinKindsAllCovered(t *testing.T) {
	covered := map[string]int{}
	for _, c := range builtinKindCases {
		covered[c.kind] = len(c.bad)
	}
	for _, k := range steps.Builtin().Kinds() {
		if covered[k.Name] < 2 {
			t.Errorf("kind %s has %d bad bodies in builtinKindCases, want at least 2", k.Name, covered[k.Name])
		}
	}
}
