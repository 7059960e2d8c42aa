package plan_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/migrun/migrun/plan"
)

func TestDetect(t *testing.T) {
	src := `version: 1
name: t
vars:
  flag: yes
  dbname: ovirt_engine_history
hosts:
  db: {address: db.example.com}
detect:
  has_dwh:
    host: db
    description: the DWH database is local
    pg_database: {name: "${dbname}", port: 5433}
  he: {host: db, file: /etc/ovirt-hosted-engine/hosted-engine.conf}
  odd: {host: db, command: "test -x /usr/bin/hosted-engine"}
steps:
  - {id: a, host: db, when: "has_dwh && flag", svc: {name: x}}
  - {id: b, host: db, when: "!he", svc: {name: x}}
`
	p, errs := parse(t, src, nil)
	if errs != nil {
		t.Fatal(strings.Join(errs, "\n"))
	}
	want := []plan.Detection{
		{Name: "has_dwh", Host: "db", Description: "the DWH database is local", PgDatabase: &plan.DetectPgDatabase{Name: "ovirt_engine_history", Port: 5433}, Line: 9, Column: 3},
		{Name: "he", Host: "db", File: "/etc/ovirt-hosted-engine/hosted-engine.conf", Line: 13, Column: 3},
		{Name: "odd", Host: "db", Command: "test -x /usr/bin/hosted-engine", Line: 14, Column: 3},
	}
	if !reflect.DeepEqual(p.Detect, want) {
		t.Errorf("detect = %+v\nwant %+v", p.Detect, want)
	}
	if got := p.Detect[0].Probe(); got != "database ovirt_engine_history exists in the PostgreSQL on db, port 5433" {
		t.Errorf("probe: %q", got)
	}
	// The probes are part of what the plan runs: changing one changes
	// the plan's digest.
	other, errs := parse(t, strings.Replace(src, "port: 5433", "port: 5432", 1), nil)
	if errs != nil || other.Digest == p.Digest {
		t.Errorf("a changed probe kept the digest (%v)", errs)
	}
}

func TestDetectErrors(t *testing.T) {
	head := "version: 1\nname: t\nvars:\n  flag: yes\nsecrets:\n  pw: {env: PW}\nhosts:\n  db: {address: db.example.com}\ndetect:\n"
	tests := []struct {
		name, detect string
		want         []string
	}{
		{"no probe, no host", "  a: {description: x}\n", []string{
			`plan.yaml:10:3: detect.a: needs host: the plan host the probe runs on`,
			`plan.yaml:10:3: detect.a: give exactly one of file, command or pg_database (got 0)`,
		}},
		{"two probes, unknown host", "  a: {host: dbb, file: /x, command: true}\n", []string{
			`plan.yaml:10:3: detect.a: give exactly one of file, command or pg_database (got 2)`,
			`plan.yaml:10:13: detect.a.host: no host "dbb" (did you mean "db"?)`,
		}},
		{"names", "  flag: {host: db, file: /x}\n  pw: {host: db, file: /x}\n  9x: {host: db, file: /x}\n", []string{
			`plan.yaml:10:3: detect.flag: a var has this name; when: would not know which one it means`,
			`plan.yaml:11:3: detect.pw: a secret has this name`,
			`plan.yaml:12:3: detect.9x: bad name; use letters, digits and _ (it is used in when: as a var is)`,
		}},
		{"probe values", "  a: {host: db, file: etc/x}\n  b: {host: db, pg_database: {port: 0, os_user: \"x y\", nme: z}}\n  c: {host: db, command: \"\", when: x}\n", []string{
			`plan.yaml:10:23: detect.a.file: "etc/x" is not an absolute path`,
			`plan.yaml:11:30: detect.b.pg_database: needs name`,
			`plan.yaml:11:37: detect.b.pg_database.port: "0" is not a TCP port (1-65535)`,
			`plan.yaml:11:49: detect.b.pg_database.os_user: "x y" is not a user name`,
			`plan.yaml:11:56: detect.b.pg_database: unknown key "nme" (did you mean "name"?)`,
			`plan.yaml:12:26: detect.c.command: empty`,
			`plan.yaml:12:30: detect.c: unknown key "when" (known keys: host, description, file, command, pg_database)`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, got := parse(t, head+tt.detect+"steps:\n  - {id: s, host: db, when: nodetect, svc: {name: x}}\n", nil)
			// The step's when names no var and no detection.
			if n := len(got); n == 0 || !strings.Contains(got[n-1], "when: no var") {
				t.Errorf("the last error is not the step's when: %q", got)
			} else {
				got = got[:n-1]
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
