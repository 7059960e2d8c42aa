package plan_test

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
)

// interpolationPlan puts run and stdin (quoted) on line 19 and 20.
const interpolationPlan = `version: 1
name: t
vars:
  base: /srv
  dir: ${base}/data
  file: ${dir}/x.dump
  price: "$$5"
  shell_var: $HOME
hosts:
  db: {address: db.example.com, user: pg}
  nouser: {address: n.example.com}
  here: {local: true}
secrets:
  pw: {env: PW}
steps:
  - id: s
    host: db
    shell:
      run: %s
      stdin: %s
`

func TestInterpolation(t *testing.T) {
	tests := []struct {
		run, stdin string
		want       string   // run after interpolation (or stdin when run is "x")
		errs       []string // instead of want
	}{
		{run: "plain", want: "plain"},
		{run: "$$", want: "$"},
		{run: "$$$$", want: "$$"},
		{run: "cost $$5", want: "cost $5"},
		{run: "$HOME and $1 and ${#}x", errs: []string{
			`plan.yaml:19:12: step "s": shell.run: ${#}: not a var or secret name (letters, digits and _, not starting with a digit)`,
		}},
		{run: "echo $HOME $1 $", want: "echo $HOME $1 $"},
		{run: "${file}", want: "/srv/data/x.dump"},
		{run: "${price}", want: "$5"}, // a var's "$$" is resolved once, not again where it is used
		{run: "$${file}", want: "${file}"},
		{run: "${shell_var}", want: "$HOME"},
		{run: "${hosts.db.address}:${hosts.db.user}", want: "db.example.com:pg"},
		{run: "a${base}b${base}c", want: "a/srvb/srvc"},
		{stdin: "${pw}", want: secret.Token("pw")},
		{stdin: "pre ${pw} ${base}", want: "pre " + secret.Token("pw") + " /srv"},
		{run: "${nope}", errs: []string{`plan.yaml:19:12: step "s": shell.run: undefined variable "nope" in ${nope}`}},
		{run: "${fil}", errs: []string{`plan.yaml:19:12: step "s": shell.run: undefined variable "fil" in ${fil} (did you mean "file"?)`}},
		{run: "${nope} ${nada}", errs: []string{
			`plan.yaml:19:12: step "s": shell.run: undefined variable "nope" in ${nope}`,
			`plan.yaml:19:12: step "s": shell.run: undefined variable "nada" in ${nada}`,
		}},
		{run: "echo ${base", errs: []string{`plan.yaml:19:12: step "s": shell.run: unterminated "${"; write "$$" for a literal "$"`}},
		{run: "x ${}", errs: []string{`plan.yaml:19:12: step "s": shell.run: empty "${}"; write "$$" for a literal "$"`}},
		{run: "${a b}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${a b}: not a var or secret name (letters, digits and _, not starting with a digit)`}},
		{run: "${hosts.dbb.address}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${hosts.dbb.address}: no host "dbb" (did you mean "db"?)`}},
		{run: "${hosts.db.port}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${hosts.db.port}: want ${hosts.NAME.address} or ${hosts.NAME.user}`}},
		{run: "${hosts.db}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${hosts.db}: want ${hosts.NAME.address} or ${hosts.NAME.user}`}},
		{run: "${hosts.here.address}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${hosts.here.address}: host "here" is local and has no address`}},
		{run: "${hosts.nouser.user}", errs: []string{`plan.yaml:19:12: step "s": shell.run: ${hosts.nouser.user}: host "nouser" sets no user`}},
		{stdin: "${pw", errs: []string{`plan.yaml:20:14: step "s": shell.stdin: unterminated "${"; write "$$" for a literal "$"`}},
	}
	for _, tt := range tests {
		name := tt.run + tt.stdin
		t.Run(name, func(t *testing.T) {
			run, field := tt.run, "run"
			if run == "" {
				run, field = "x", "stdin"
			}
			src := fmt.Sprintf(interpolationPlan, strconv.Quote(run), strconv.Quote(tt.stdin))
			p, errs := parse(t, src, nil)
			if !reflect.DeepEqual(errs, tt.errs) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if p == nil {
				return
			}
			spec := p.Steps[0].Spec.(*shellSpec)
			got := spec.Run
			if field == "stdin" {
				got = spec.Stdin
			}
			if got != tt.want {
				t.Errorf("%s = %q, want %q", field, got, tt.want)
			}
		})
	}
}

func TestVarResolution(t *testing.T) {
	tests := []struct {
		name      string
		vars      string // the vars block, starting on line 4
		overrides map[string]string
		ref       string // what the step's command uses; default ${a} or, with errs, nothing
		want      map[string]string
		errs      []string
	}{
		{
			name: "chain in any order",
			vars: "  c: ${b}/c\n  a: /a\n  b: ${a}/b\n  n: 5432\n  t: true\n  e: \"\"\n",
			want: map[string]string{"a": "/a", "b": "/a/b", "c": "/a/b/c", "n": "5432", "t": "true", "e": ""},
		},
		{
			name: "self cycle",
			vars: "  a: x${a}\n",
			errs: []string{"plan.yaml:4:6: vars.a: ${a} makes a cycle: a -> a"},
		},
		{
			name: "long cycle is reported once, where it closes",
			vars: "  a: ${b}\n  b: ${c}\n  c: ${a}\n",
			errs: []string{"plan.yaml:6:6: vars.c: ${a} makes a cycle: a -> b -> c -> a"},
		},
		{
			name: "users of a broken var stay quiet",
			vars: "  a: ${b}\n  b: ${a}\n  d: ${a}/d\n  e: ${nope}\n  f: ${e}\n",
			ref:  "${d} ${f}",
			errs: []string{
				"plan.yaml:5:6: vars.b: ${a} makes a cycle: a -> b -> a",
				`plan.yaml:7:6: vars.e: undefined variable "nope" in ${nope}`,
			},
		},
		{
			name:      "an override breaks a cycle",
			vars:      "  a: ${b}/a\n  b: ${a}\n",
			overrides: map[string]string{"b": "/b"},
			want:      map[string]string{"a": "/b/a", "b": "/b"},
		},
		{
			name:      "overrides are literal",
			vars:      "  a: x\n  b: ${a}/b\n",
			overrides: map[string]string{"a": "${nope}$$"},
			want:      map[string]string{"a": "${nope}$$", "b": "${nope}$$/b"},
		},
		{
			name: "vars cannot use secrets or hosts",
			vars: "  a: ${pw}\n  b: ${hosts.db.address}\n",
			errs: []string{
				"plan.yaml:4:6: vars.a: ${pw}: vars cannot hold secrets, they are printed and stored in plain text; use the secret directly in a step field that takes secrets",
				"plan.yaml:5:6: vars.b: ${hosts.db.address}: vars cannot refer to hosts (host fields are built from vars)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ref := tt.ref
			switch {
			case ref != "":
			case tt.want != nil:
				ref = "${a}"
			default:
				ref = "$$a"
			}
			src := "version: 1\nname: t\nvars:\n" + tt.vars + `secrets:
  pw: {env: PW}
hosts:
  db: {address: db}
steps:
  - {id: s, host: db, shell: "echo ` + ref + `"}
`
			p, errs := parse(t, src, tt.overrides)
			if !reflect.DeepEqual(errs, tt.errs) {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(errs, "\n"), strings.Join(tt.errs, "\n"))
			}
			if p != nil && !reflect.DeepEqual(p.Vars, tt.want) {
				t.Errorf("Vars = %v, want %v", p.Vars, tt.want)
			}
		})
	}
}

func TestOverrides(t *testing.T) {
	base := mustParse(t, goodPlan, nil)
	p := mustParse(t, goodPlan, map[string]string{"db_host": "db2.example.com", "verify": "no"})
	if p.Vars["db_host"] != "db2.example.com" || p.Hosts["db"].Address != "db2.example.com" {
		t.Errorf("override did not reach the var and the host: %q, %q", p.Vars["db_host"], p.Hosts["db"].Address)
	}
	if got := p.Steps[2].Spec.(*shellSpec).Run; !strings.Contains(got, "-h db2.example.com ") {
		t.Errorf("override did not reach ${hosts.db.address} in a step: %q", got)
	}
	if p.Description != "Move the engine database to db2.example.com." {
		t.Errorf("Description = %q", p.Description)
	}
	if p.Digest == base.Digest {
		t.Error("plan digest unchanged by an override")
	}
}

// TestInterpolatedNumbersAndFlags: "${var}" may stand for an int or a bool
// field, so plans take ports and switches from vars.
func TestInterpolatedNumbersAndFlags(t *testing.T) {
	base := `version: 1
name: p
vars: {port: "5433", on: "yes", bad: "x"}
hosts:
  h: {address: example.com, port: "${port}"}
steps:
  - id: s
    host: h
    svc: {name: x, enabled: "${on}", wait: "${port}"}
`
	p, err := plan.Parse("plan.yaml", []byte(base), testRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hosts["h"].Port != 5433 {
		t.Fatalf("port %d", p.Hosts["h"].Port)
	}
	if got := fmt.Sprintf("%+v", p.Steps[0].Spec); !strings.Contains(got, "Enabled:true") || !strings.Contains(got, "Wait:5433") {
		t.Fatalf("spec %s", got)
	}
	_, err = plan.Parse("plan.yaml", []byte(strings.Replace(base, "${port}", "${bad}", 1)), testRegistry(), nil)
	if err == nil || !strings.Contains(err.Error(), `plan.yaml:5:35: hosts.h.port: want an integer, got "x" from ${bad}`) {
		t.Fatalf("err = %v", err)
	}
}
