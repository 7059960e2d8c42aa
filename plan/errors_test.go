package plan_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/plan"
)

// header is 11 lines; a step list appended to it starts on line 12.
const header = `version: 1
name: t
vars:
  flag: yes
  word: maybe
secrets:
  pw: {env: PW}
hosts:
  db: {address: db.example.com, user: pg}
  here: {local: true}
steps:
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name      string
		src       string
		overrides map[string]string
		want      []string
	}{
		// Document level.
		{"empty file", "", nil, []string{"plan.yaml: the plan is empty"}},
		{"only comments", "# nothing yet\n", nil, []string{"plan.yaml: the plan is empty"}},
		{"yaml syntax", "version: 1\nname: [x\n", nil, []string{"plan.yaml:2:7: YAML: did not find expected ',' or ']'"}},
		{"two documents", "version: 1\n---\nname: x\n", nil, []string{"plan.yaml:2:1: a plan is one YAML document; this is a second one"}},
		{"root is a list", "- a\n", nil, []string{"plan.yaml:1:1: want a mapping, got a list"}},
		{"missing keys", "description: x\n", nil, []string{
			`plan.yaml:1:1: missing required key "version"`,
			`plan.yaml:1:1: missing required key "name"`,
			`plan.yaml:1:1: missing required key "steps"`,
		}},
		{"version", "version: 2\nname: t\nsteps: []\n", nil, []string{
			"plan.yaml:1:10: version: 2 is not supported; this migrun reads version 1",
			"plan.yaml:3:8: steps: the plan has no steps",
		}},
		{"version as string", "version: \"1\"\nname: t\nsteps: []\n", nil, []string{
			"plan.yaml:1:10: version: want an integer, got a string",
			"plan.yaml:3:8: steps: the plan has no steps",
		}},
		{"bad name", "version: 1\nname: Engine DB\nsteps: []\n", nil, []string{
			`plan.yaml:2:7: name: "Engine DB": use lowercase letters, digits and - (it names the journal)`,
			"plan.yaml:3:8: steps: the plan has no steps",
		}},
		{"unknown and duplicate top keys", "version: 1\nname: t\nname: u\nstep: []\nsteps: []\n", nil, []string{
			`plan.yaml:3:1: duplicate key "name" (first at line 2)`,
			`plan.yaml:4:1: unknown key "step" (did you mean "steps"?)`,
			"plan.yaml:5:8: steps: the plan has no steps",
		}},
		{"merge key", "version: 1\nname: t\nbase: &b {host: db}\nsteps:\n  - <<: *b\n    id: a\n", nil, []string{
			`plan.yaml:3:1: unknown key "base" (known keys: version, name, description, vars, secrets, hosts, detect, steps, on_failure)`,
			`plan.yaml:5:5: step "a": merge keys (<<) are not supported; repeat the keys, or use an alias for the whole value`,
			`plan.yaml:5:5: step "a": no step kind; give one of: shell, svc, xfer`,
		}},
		{"alias bomb", "version: 1\nname: t\na: &a [" + strings.Repeat("x,", 1000) + "x]\nb: &b [" + strings.Repeat("*a,", 1000) + "*a]\nsteps: []\n", nil, []string{
			"plan.yaml: YAML aliases expand this plan to more than 1000000 nodes",
		}},
		{"steps not a list", "version: 1\nname: t\nsteps: {id: a}\n", nil, []string{
			"plan.yaml:3:8: steps: want a list, got a mapping",
		}},
		{"unknown override", header + "  - {id: a, host: db, svc: x}\n", map[string]string{"flga": "no", "zzz": "1"}, []string{
			`plan.yaml: --var flga: the plan has no var "flga" (did you mean "flag"?)`,
			`plan.yaml: --var zzz: the plan has no var "zzz"`,
			`plan.yaml:12:28: step "a": svc: want a mapping of its fields, got a string`,
		}},

		{"forged token in an override", header + "  - {id: a, host: db, shell: \"${word}\"}\n", map[string]string{"word": "\x1esecret:pw\x1e"}, []string{
			"plan.yaml: --var word: holds the control character U+001E, which migrun reserves for secret placeholders",
		}},

		// Vars and secrets.
		{"vars", "version: 1\nname: t\nvars:\n  a: [x]\n  9b: x\n  c:\n  d: ${pw}\n  e: ${nope}\nsecrets:\n  pw: {env: PW}\n  c: {env: C}\nsteps: []\n", nil, []string{
			"plan.yaml:4:6: vars.a: want a string, got a list",
			"plan.yaml:5:3: vars.9b: bad var name; use letters, digits and _, not starting with a digit",
			`plan.yaml:6:5: vars.c: no value; write "" for an empty string`,
			"plan.yaml:7:6: vars.d: ${pw}: vars cannot hold secrets, they are printed and stored in plain text; use the secret directly in a step field that takes secrets",
			`plan.yaml:8:6: vars.e: undefined variable "nope" in ${nope}`,
			"plan.yaml:12:8: steps: the plan has no steps",
		}},
		{"var and secret of one name", "version: 1\nname: t\nvars:\n  c: x\nsecrets:\n  c: {env: C}\nsteps: []\n", nil, []string{
			"plan.yaml:6:3: secrets.c: c is also a var (line 4); a name is either a var or a secret",
			"plan.yaml:7:8: steps: the plan has no steps",
		}},
		{"secret sources", `version: 1
name: t
vars:
  dir: /etc
secrets:
  none: {}
  two: {env: A, file: /b}
  typo: {evn: A}
  empty: {env: ""}
  badenv: {env: "A-B"}
  fromvar: {file: "${dir}/pw"}
  fromsecret: {prompt: "${none}"}
  list: [env, A]
steps: []
`, nil, []string{
			"plan.yaml:6:3: secrets.none: say where the value comes from: env, file or prompt",
			"plan.yaml:7:3: secrets.two: has env and file; give exactly one of env, file or prompt",
			"plan.yaml:8:3: secrets.typo: say where the value comes from: env, file or prompt",
			`plan.yaml:8:10: secrets.typo: unknown key "evn" (did you mean "env"?)`,
			"plan.yaml:9:16: secrets.empty.env: must not be empty",
			`plan.yaml:10:17: secrets.badenv.env: "A-B" is not an environment variable name`,
			"plan.yaml:12:24: secrets.fromsecret.prompt: ${none} is a secret; only step fields that take secrets may use one",
			"plan.yaml:13:9: secrets.list: want a mapping, got a list",
			"plan.yaml:14:8: steps: the plan has no steps",
		}},

		// Hosts.
		{"hosts", `version: 1
name: t
vars:
  h: db.example.com
secrets:
  pw: {env: PW}
hosts:
  both: {local: true, address: x}
  neither: {user: root}
  port: {address: x, port: 70000}
  portstr: {address: x, port: "22"}
  become: {address: x, become: doas}
  typo: {adress: x}
  workstation: {local: true}
  Bad: {address: x}
  localuser: {local: true, user: root, jump: j}
  at: {address: root@x}
  colon: {address: "x:22"}
  secret: {address: "${pw}"}
  dash: {address: -oProxyCommand=x}
  ok: {address: "${h}", port: 22, identity_file: ~/.ssh/id, jump: "bastion:2222", become: sudo}
  v6: {address: "fe80::1"}
  list: [x]
steps: []
`, nil, []string{
			"plan.yaml:8:23: hosts.both: local: true and address exclude each other",
			"plan.yaml:9:3: hosts.neither: needs address (or local: true for the workstation)",
			"plan.yaml:10:28: hosts.port.port: 70000 is not a TCP port (1-65535)",
			"plan.yaml:11:31: hosts.portstr.port: want an integer, got a string",
			`plan.yaml:12:32: hosts.become.become: "doas" is not sudo or su`,
			"plan.yaml:13:3: hosts.typo: needs address (or local: true for the workstation)",
			`plan.yaml:13:10: hosts.typo: unknown key "adress" (did you mean "address"?)`,
			`plan.yaml:14:3: hosts.workstation: the name "workstation" is reserved for the machine migrun runs on; name the host differently (or use local: true)`,
			"plan.yaml:15:3: hosts.Bad: bad host name; use lowercase letters, digits, _ and -",
			"plan.yaml:16:28: hosts.localuser.user: means nothing for a local host",
			"plan.yaml:16:40: hosts.localuser.jump: means nothing for a local host",
			`plan.yaml:17:17: hosts.at.address: "root@x": give the user in user:, not in the address`,
			`plan.yaml:18:20: hosts.colon.address: "x:22": give the port in port:, not in the address`,
			"plan.yaml:19:21: hosts.secret.address: ${pw} is a secret; only step fields that take secrets may use one",
			`plan.yaml:20:19: hosts.dash.address: "-oProxyCommand=x" starts with "-" and would read as an option`,
			"plan.yaml:23:9: hosts.list: want a mapping, got a list",
			"plan.yaml:24:8: steps: the plan has no steps",
		}},

		// Step fields.
		{"missing id and bad ids", header + `  - host: db
    svc: {name: x}
  - id: Stop_It
    host: db
    svc: {name: x}
  - id: ""
    host: db
    svc: {name: x}
  - just a string
`, nil, []string{
			`plan.yaml:12:5: step "steps[0]": missing id`,
			`plan.yaml:14:9: step "Stop_It": id: use lowercase letters, digits and -`,
			`plan.yaml:17:9: step "steps[2]": id: must not be empty`,
			`plan.yaml:20:5: step "steps[3]": want a mapping, got a string`,
		}},
		{"duplicate ids across steps and on_failure", header + `  - {id: a, host: db, svc: {name: x}}
  - {id: a, host: db, svc: {name: y}}
on_failure:
  - {id: a, host: db, svc: {name: z}}
`, nil, []string{
			`plan.yaml:13:10: step "a": duplicate step id (first at line 12)`,
			`plan.yaml:15:10: step "a": duplicate step id (first at line 12)`,
		}},
		{"kinds", header + `  - id: none
    host: db
  - id: two
    host: db
    svc: {name: x}
    shell: echo
  - id: nohost
    svc: {name: x}
  - id: typo
    host: db
    svc: {name: x}
    hots: db
  - id: unknown-kind
    host: db
    rsync: {}
  - id: not-scalar
    host: db
    svc: ovirt-engine
  - id: list-body
    host: db
    svc: [x]
`, nil, []string{
			`plan.yaml:12:5: step "none": no step kind; give one of: shell, svc, xfer`,
			`plan.yaml:17:5: step "two": shell: a step has exactly one kind and this one already is svc (line 16); split it into two steps`,
			`plan.yaml:19:5: step "nohost": svc needs host: (the plan host it runs on)`,
			`plan.yaml:23:5: step "typo": unknown key "hots" (did you mean "host"?)`,
			`plan.yaml:24:5: step "unknown-kind": no step kind; give one of: shell, svc, xfer`,
			`plan.yaml:26:5: step "unknown-kind": unknown key "rsync" (step fields: id, host, description, become, timeout, retries, when, point_of_no_return; kinds: shell, svc, xfer)`,
			`plan.yaml:29:10: step "not-scalar": svc: want a mapping of its fields, got a string`,
			`plan.yaml:32:10: step "list-body": svc: want a mapping, got a list`,
		}},
		{"common fields", header + `  - id: a
    host: dbb
    become: ""
    timeout: 30
    retries: -1
    svc: {name: x}
  - id: b
    host: db
    timeout: soon
    retries: many
    description: [x]
    svc: {name: x}
  - id: c
    host: ""
    timeout: 0s
    svc: {name: x}
`, nil, []string{
			`plan.yaml:13:11: step "a": host: unknown host "dbb" (did you mean "db"?)`,
			`plan.yaml:14:13: step "a": become: must not be empty (leave it out to run as the login user)`,
			`plan.yaml:15:14: step "a": timeout: 30 has no unit; write it like "30s" or "10m"`,
			`plan.yaml:16:14: step "a": retries: -1 is negative`,
			`plan.yaml:20:14: step "b": timeout: "soon" is not a duration like "30s" or "10m"`,
			`plan.yaml:21:14: step "b": retries: want an integer, got a string`,
			`plan.yaml:22:18: step "b": description: want a string, got a list`,
			`plan.yaml:25:11: step "c": host: must not be empty`,
			`plan.yaml:26:14: step "c": timeout: "0s" must be positive`,
		}},
		{"when", header + `  - {id: a, host: db, when: nope, svc: {name: x}}
  - {id: b, host: db, when: "!word", svc: {name: x}}
  - {id: c, host: db, when: pw, svc: {name: x}}
  - {id: d, host: db, when: "flag == 1", svc: {name: x}}
  - {id: e, host: db, when: "!flag", svc: {name: x}}
  - {id: f, host: db, when: flga, svc: {name: x}}
  - {id: g, host: db, when: "flag && !nope", svc: {name: x}}
  - {id: h, host: db, when: "flag &&", svc: {name: x}}
  - {id: i, host: db, when: "flag && !flag", svc: {name: x}}
`, nil, []string{
			`plan.yaml:12:29: step "a": when: no var "nope"`,
			`plan.yaml:13:29: step "b": when: var word is "maybe"; want true, false, yes, no, 1 or 0`,
			`plan.yaml:14:29: step "c": when: "pw" is a secret; when takes a var`,
			`plan.yaml:15:29: step "d": when: "flag == 1": want a var name, !name to negate, and && between them`,
			`plan.yaml:17:29: step "f": when: no var "flga" (did you mean "flag"?)`,
			`plan.yaml:18:29: step "g": when: no var "nope"`,
			`plan.yaml:19:29: step "h": when: "flag &&": want a var name, !name to negate, and && between them`,
		}},
		{"when var overridden to a non-bool", header + "  - {id: a, host: db, when: flag, svc: {name: x}}\n", map[string]string{"flag": "perhaps"}, []string{
			`plan.yaml:12:29: step "a": when: var flag is "perhaps"; want true, false, yes, no, 1 or 0`,
		}},

		// Spec fields.
		{"spec types", header + `  - id: a
    host: db
    svc: {name: [x], state: stoped, enabled: "yes", wait: soon, args: --now, stat: x}
  - id: b
    host: db
    shell: {run: "", env: [A], stdin: }
  - id: c
    host: db
    svc:
      name: a
      name: b
  - id: d
    host: db
    svc: {state: stopped}
  - id: e
    xfer: {from: "db:/a", to: "db:/b", owner: {grp: x}}
`, nil, []string{
			`plan.yaml:14:17: step "a": svc.name: want a string, got a list`,
			`plan.yaml:14:29: step "a": svc.state: "stoped" is not one of started, stopped, restarted (did you mean "stopped"?)`,
			`plan.yaml:14:46: step "a": svc.enabled: want true or false, got a string`,
			`plan.yaml:14:59: step "a": svc.wait: want an integer, got a string`,
			`plan.yaml:14:71: step "a": svc.args: want a list, got a string`,
			`plan.yaml:14:78: step "a": svc: unknown key "stat" (did you mean "state"?)`,
			`plan.yaml:17:18: step "b": shell.run: must not be empty`,
			`plan.yaml:17:27: step "b": shell.env: want a mapping, got a list`,
			`plan.yaml:17:39: step "b": shell.stdin: no value; write "" for an empty string`,
			`plan.yaml:22:7: step "c": svc: duplicate key "name" (first at line 21)`,
			`plan.yaml:25:5: step "d": svc: missing required key "name"`,
			`plan.yaml:27:40: step "e": xfer.owner: missing required key "user"`,
			`plan.yaml:27:48: step "e": xfer.owner: unknown key "grp" (known keys: user, group)`,
		}},
		{"secrets where they would leak", header + `  - id: a
    host: db
    description: "uses ${pw}"
    become: "${pw}"
    shell: {run: "login ${pw}", stdin: "${pw}", env: {PGPASSWORD: "${pw}"}}
  - id: b
    host: db
    svc: {name: x, args: [--pass, "${pw}"]}
`, nil, []string{
			`plan.yaml:14:18: step "a": description: secret "pw" would be printed in plain text here; only step fields that take secrets may use one`,
			`plan.yaml:15:13: step "a": become: secret "pw" would be printed in plain text here; only step fields that take secrets may use one`,
			`plan.yaml:16:18: step "a": secret "pw" in shell.run would be visible in argv/ps; only shell.stdin can take secrets (they never reach a command line)`,
			`plan.yaml:16:67: step "a": secret "pw" in shell.env.PGPASSWORD would be visible in argv/ps; only shell.stdin can take secrets (they never reach a command line)`,
			`plan.yaml:19:35: step "b": secret "pw" in svc.args[1] would be visible in argv/ps; svc has no field that takes secrets`,
		}},
		{"validate problems point at their field", header + `  - id: a
    host: db
    shell: {run: x, creates: tmp/x}
  - id: b
    xfer:
      from: db:/a
      to: db:relative
      mode: "0999"
      owner: {user: a, group: nogroup}
  - id: c
    host: db
    svc: {name: a/b, wait: -1}
`, nil, []string{
			`plan.yaml:14:21: step "a": shell.creates: must be an absolute path`,
			`plan.yaml:18:7: step "b": xfer.to: want HOST:/absolute/path`,
			`plan.yaml:19:7: step "b": xfer.mode: not an octal mode`,
			`plan.yaml:20:24: step "b": xfer.owner.group: nogroup cannot own files`,
			`plan.yaml:23:5: step "c": svc: a unit name has no /`,
			`plan.yaml:23:22: step "c": svc.wait: must not be negative`,
		}},
		{"hosts a kind names", header + `  - id: a
    xfer: {from: "db:/a", to: "dbb:/b"}
  - id: b
    xfer:
      from: "nope:/a"
      to: "db:/b"
on_failure:
  - id: c
    xfer: {from: "x:/a", to: "here:/b"}
`, nil, []string{
			`plan.yaml:13:27: step "a": xfer.to: unknown host "dbb" (did you mean "db"?)`,
			`plan.yaml:16:7: step "b": xfer.from: unknown host "nope"`,
			`plan.yaml:20:12: step "c": xfer.from: unknown host "x"`,
		}},
		{"control character", header + "  - {id: a, host: db, shell: \"echo \\x1esecret:pw\\x1e\"}\n", nil, []string{
			`plan.yaml:12:30: step "a": shell.run: holds the control character U+001E, which migrun reserves for secret placeholders`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parse(t, tt.src, tt.overrides)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestParseReportsEverything checks that one load lists every problem of
// a plan riddled with them, in file order, and that the result is usable
// with errors.As both as Errors and as a single *Error.
func TestParseReportsEverything(t *testing.T) {
	src := `version: 2
name: Bad_Name
nope: 1
vars:
  a: ${b}
  b: ${a}
hosts:
  db: {address: db, local: true}
steps:
  - id: a
    host: dbb
    svc: {name: x, state: stoped}
  - id: a
    svc: {name: x}
    shell: x
on_failure:
  - id: r
    host: db
    shell: {run: "echo ${zz}", creates: rel}
`
	_, err := plan.Parse("plan.yaml", []byte(src), testRegistry(), nil)
	want := []string{
		"plan.yaml:1:10: version: 2 is not supported; this migrun reads version 1",
		`plan.yaml:2:7: name: "Bad_Name": use lowercase letters, digits and - (it names the journal)`,
		`plan.yaml:3:1: unknown key "nope" (known keys: version, name, description, vars, secrets, hosts, detect, steps, on_failure)`,
		"plan.yaml:6:6: vars.b: ${a} makes a cycle: a -> b -> a",
		"plan.yaml:8:8: hosts.db: local: true and address exclude each other",
		`plan.yaml:11:11: step "a": host: unknown host "dbb" (did you mean "db"?)`,
		`plan.yaml:12:27: step "a": svc.state: "stoped" is not one of started, stopped, restarted (did you mean "stopped"?)`,
		`plan.yaml:13:9: step "a": duplicate step id (first at line 10)`,
		`plan.yaml:14:5: step "a": svc needs host: (the plan host it runs on)`,
		`plan.yaml:15:5: step "a": shell: a step has exactly one kind and this one already is svc (line 14); split it into two steps`,
		`plan.yaml:19:18: step "r": shell.run: undefined variable "zz" in ${zz}`,
	}
	var errs plan.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse = %v, want plan.Errors", err)
	}
	if got := strings.Split(errs.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var first *plan.Error
	if !errors.As(err, &first) || first.Line != 1 || first.Column != 10 {
		t.Errorf("errors.As(*plan.Error) = %+v, want the version error at 1:10", first)
	}
	for _, e := range errs {
		if e.File != "plan.yaml" || e.Line == 0 {
			t.Errorf("error without a position: %+v", e)
		}
	}
}
