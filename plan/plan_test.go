package plan_test

import (
	"errors"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
)

const goodPlan = `version: 1
name: ovirt-engine-remote-db
description: Move the engine database to ${db_host}.
vars:
  db_host: db.example.com
  dump_file: /tmp/engine.dump
  port: 5432
  verify: yes
secrets:
  engine_db_password: {env: ENGINE_DB_PASSWORD}
  unused: {prompt: "never asked"}
hosts:
  engine: {address: engine.example.com, user: root}
  db:     {address: "${db_host}", user: postgres, port: 2222, become: su}
  here:   {local: true}
steps:
  - id: stop-engine
    host: engine
    description: Stop the engine so the dump is consistent.
    svc: {name: ovirt-engine, state: stopped}
  - id: copy-dump
    xfer: {from: "engine:${dump_file}", to: "db:${dump_file}", mode: "0600", owner: {user: postgres}}
  - id: load
    host: db
    become: postgres
    timeout: 10m
    retries: 2
    when: "!verify"
    shell:
      run: psql -p ${port} -h ${hosts.db.address} -c 'select $$1' "$HOME"
      stdin: "${engine_db_password}"
      env: {PGUSER: "${hosts.db.user}"}
  - id: note
    host: here
    shell: echo done
on_failure:
  - id: restart-engine-on-old-db
    host: engine
    svc: {name: ovirt-engine, state: started, enabled: true, wait: 30, args: [--now]}
`

// parse parses src as plan.yaml with the test kinds and returns the plan
// or the error lines.
func parse(t *testing.T, src string, overrides map[string]string) (*plan.Plan, []string) {
	t.Helper()
	p, err := plan.Parse("plan.yaml", []byte(src), testRegistry(), overrides)
	if err == nil {
		return p, nil
	}
	var errs plan.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Parse returned %T, want plan.Errors: %v", err, err)
	}
	if p != nil {
		t.Errorf("Parse returned a plan along with errors")
	}
	return nil, strings.Split(errs.Error(), "\n")
}

func mustParse(t *testing.T, src string, overrides map[string]string) *plan.Plan {
	t.Helper()
	p, errs := parse(t, src, overrides)
	if errs != nil {
		t.Fatalf("Parse:\n%s", strings.Join(errs, "\n"))
	}
	return p
}

func TestParseGood(t *testing.T) {
	p := mustParse(t, goodPlan, nil)

	if p.File != "plan.yaml" || p.Name != "ovirt-engine-remote-db" {
		t.Errorf("File, Name = %q, %q", p.File, p.Name)
	}
	if want := "Move the engine database to db.example.com."; p.Description != want {
		t.Errorf("Description = %q, want %q", p.Description, want)
	}
	wantVars := map[string]string{"db_host": "db.example.com", "dump_file": "/tmp/engine.dump", "port": "5432", "verify": "yes"}
	if !reflect.DeepEqual(p.Vars, wantVars) {
		t.Errorf("Vars = %v, want %v", p.Vars, wantVars)
	}
	wantSecrets := map[string]plan.SecretSource{
		"engine_db_password": {Env: "ENGINE_DB_PASSWORD"},
		"unused":             {Prompt: "never asked"},
	}
	if !reflect.DeepEqual(p.Secrets, wantSecrets) {
		t.Errorf("Secrets = %v, want %v", p.Secrets, wantSecrets)
	}
	wantHosts := map[string]plan.Host{
		"engine": {Name: "engine", Address: "engine.example.com", User: "root", Become: "sudo", Line: 13, Column: 3},
		"db":     {Name: "db", Address: "db.example.com", User: "postgres", Port: 2222, Become: "su", Line: 14, Column: 3},
		"here":   {Name: "here", Local: true, Become: "sudo", Line: 15, Column: 3},
	}
	if !reflect.DeepEqual(p.Hosts, wantHosts) {
		t.Errorf("Hosts =\n%+v\nwant\n%+v", p.Hosts, wantHosts)
	}

	type stepView struct {
		ID, Kind, Host, Description, Become string
		Timeout                             time.Duration
		Retries                             int
		When                                string
		Line, Column                        int
		Spec                                any
	}
	view := func(list []plan.Step) []stepView {
		var out []stepView
		for _, s := range list {
			if len(s.Digest) != 64 {
				t.Errorf("step %s: Digest = %q, want 64 hex digits", s.ID, s.Digest)
			}
			out = append(out, stepView{s.ID, s.Kind, s.Host, s.Description, s.Become, s.Timeout, s.Retries, s.When, s.Line, s.Column, s.Spec})
		}
		return out
	}
	wantSteps := []stepView{
		{ID: "stop-engine", Kind: "svc", Host: "engine", Description: "Stop the engine so the dump is consistent.", Line: 17, Column: 5,
			Spec: &svcSpec{Name: "ovirt-engine", State: "stopped"}},
		{ID: "copy-dump", Kind: "xfer", Line: 21, Column: 5,
			Spec: &xferSpec{From: "engine:/tmp/engine.dump", To: "db:/tmp/engine.dump", Mode: "0600", Owner: xferOwner{User: "postgres"}}},
		{ID: "load", Kind: "shell", Host: "db", Become: "postgres", Timeout: 10 * time.Minute, Retries: 2, When: "!verify", Line: 23, Column: 5,
			Spec: &shellSpec{
				Run:   `psql -p 5432 -h db.example.com -c 'select $1' "$HOME"`,
				Stdin: secret.Token("engine_db_password"),
				Env:   map[string]string{"PGUSER": "postgres"},
			}},
		{ID: "note", Kind: "shell", Host: "here", Line: 33, Column: 5, Spec: &shellSpec{Run: "echo done"}},
	}
	if got := view(p.Steps); !reflect.DeepEqual(got, wantSteps) {
		t.Errorf("Steps =\n%+v\nwant\n%+v", got, wantSteps)
	}
	wantOnFailure := []stepView{
		{ID: "restart-engine-on-old-db", Kind: "svc", Host: "engine", Line: 37, Column: 5,
			Spec: &svcSpec{Name: "ovirt-engine", State: "started", Enabled: true, Wait: 30, Args: []string{"--now"}}},
	}
	if got := view(p.OnFailure); !reflect.DeepEqual(got, wantOnFailure) {
		t.Errorf("OnFailure =\n%+v\nwant\n%+v", got, wantOnFailure)
	}
	if len(p.Digest) != 64 {
		t.Errorf("Digest = %q, want 64 hex digits", p.Digest)
	}
	if got, want := p.UsedSecrets(), []string{"engine_db_password"}; !reflect.DeepEqual(got, want) {
		t.Errorf("UsedSecrets = %v, want %v", got, want)
	}
}

func TestParseAliases(t *testing.T) {
	// An alias repeats a block; the decoder treats it as if written out.
	p := mustParse(t, `version: 1
name: x
hosts:
  db: {address: db}
steps:
  - id: a
    host: db
    svc: &unit {name: pg, state: stopped}
  - id: b
    host: db
    svc: *unit
`, nil)
	if a, b := p.Steps[0].Spec.(*svcSpec), p.Steps[1].Spec.(*svcSpec); !reflect.DeepEqual(a, b) || a == b || b.State != "stopped" {
		t.Errorf("alias decoded as %+v and %+v", a, b)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(file, []byte(goodPlan), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := plan.Load(file, testRegistry(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.File != file || p.Digest != mustParse(t, goodPlan, nil).Digest {
		t.Errorf("Load: File %q, Digest %q; want the path and the digest Parse gives", p.File, p.Digest)
	}

	_, err = plan.Load(filepath.Join(dir, "missing.yaml"), testRegistry(), nil)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load of a missing file = %v, want fs.ErrNotExist", err)
	}

	if err := os.WriteFile(file, []byte("version: 1\nname: x\nsteps: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = plan.Load(file, testRegistry(), nil)
	var one *plan.Error
	if !errors.As(err, &one) || one.File != file || one.Line != 3 || one.Column != 8 {
		t.Errorf("Load of a plan without steps = %v; want a *plan.Error at %s:3:8", err, file)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		err  plan.Error
		want string
	}{
		{plan.Error{File: "plan.yaml", Line: 12, Column: 5, Step: "copy-dump", Msg: `copy.to: unknown host "dbb"`},
			`plan.yaml:12:5: step "copy-dump": copy.to: unknown host "dbb"`},
		{plan.Error{File: "plan.yaml", Line: 3, Column: 1, Msg: "x"}, "plan.yaml:3:1: x"},
		{plan.Error{File: "plan.yaml", Line: 3, Msg: "x"}, "plan.yaml:3: x"},
		{plan.Error{File: "plan.yaml", Msg: "the plan is empty"}, "plan.yaml: the plan is empty"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
	errs := plan.Errors{&tests[0].err, &tests[1].err}
	if got, want := errs.Error(), tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Errors.Error() = %q, want %q", got, want)
	}
}

// A host's jump may name another host of the plan: it goes through that
// host as the plan reaches it (user, address, port), after that host's
// own jump.
func TestJumpThroughPlanHosts(t *testing.T) {
	p := mustParse(t, `version: 1
name: x
hosts:
  bastion: {address: gw.example.com, user: ops, port: 2222, identity_file: /keys/bastion}
  engine: {address: 10.0.0.5, user: root, jump: bastion}
  db: {address: 10.0.0.6, jump: engine}
  other: {address: 10.0.0.7, jump: "admin@gw2.example.com"}
steps:
  - {id: a, host: db, svc: {name: pg, state: stopped}}
`, nil)
	for name, want := range map[string]string{
		"bastion": "",
		"engine":  "ops@gw.example.com:2222",
		"db":      "ops@gw.example.com:2222,root@10.0.0.5",
		"other":   "admin@gw2.example.com",
	} {
		if got := p.Hosts[name].Jump; got != want {
			t.Errorf("hosts.%s.jump = %q, want %q", name, got, want)
		}
	}
	// Each hop that is a plan host is reached with that host's key.
	if got, want := p.Hosts["db"].JumpIdentityFiles, map[string]string{"ops@gw.example.com:2222": "/keys/bastion"}; !maps.Equal(got, want) {
		t.Errorf("hosts.db jump identities = %v, want %v", got, want)
	}
	if got := p.Hosts["other"].JumpIdentityFiles; got != nil {
		t.Errorf("hosts.other jump identities = %v, want none", got)
	}

	for _, tt := range []struct{ hosts, want string }{
		{"  a: {address: a.example.com, jump: b}\n  b: {address: b.example.com, jump: a}\n", "hosts.a.jump: the hosts jump through each other in a loop (a -> b -> a)"},
		{"  a: {address: a.example.com, jump: a}\n", "hosts.a.jump: the hosts jump through each other in a loop (a -> a)"},
		{"  a: {address: a.example.com, jump: here}\n  here: {local: true}\n", `hosts.a.jump: "here" is the machine migrun runs on`},
	} {
		_, err := plan.Parse("plan.yaml", []byte("version: 1\nname: x\nhosts:\n"+tt.hosts+"steps:\n  - {id: s, host: a, svc: {name: pg, state: stopped}}\n"), testRegistry(), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("hosts\n%s: %v, want an error with %q", tt.hosts, err, tt.want)
		}
	}
}
