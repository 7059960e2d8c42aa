package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fleetPlan writes ${out}/${site}, and fails for the site named "bad".
const fleetPlan = `version: 1
name: fleet-test
vars:
  out: /nonexistent
  site: none
  addr: none
hosts:
  here: {local: true}
steps:
  - id: write
    host: here
    command:
      script: 'echo "${addr}" >> "${out}/${site}"; test "${site}" != bad'
`

func TestCLIFleet(t *testing.T) {
	planFile, dir := writePlan(t, fleetPlan)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	inv := filepath.Join(dir, "fleet.yaml")
	os.WriteFile(inv, []byte(fmt.Sprintf(`version: 1
vars: {out: %q}
sets:
  - {name: paris, vars: {site: paris}}
  - {name: bad, vars: {site: bad}}
  - {name: lyon, vars: {site: lyon}}
  - {name: nantes, vars: {site: nantes}}
`, out)), 0o644)

	code, stdout, stderr := cli(t, nil, "apply", "--yes", "--inventory", inv, "--parallel", "2", planFile)
	if code != exitFailed {
		t.Fatalf("apply over the fleet: exit %d, want 1 (one set failed)\n%s\n%s", code, stdout, stderr)
	}
	for _, site := range []string{"paris", "bad", "lyon", "nantes"} {
		if b, _ := os.ReadFile(filepath.Join(out, site)); string(b) != "none\n" {
			t.Errorf("set %s wrote %q, want one line", site, b)
		}
		if !strings.Contains(stdout, "["+site+"] Applying fleet-test") {
			t.Errorf("no output prefixed [%s]:\n%s", site, stdout)
		}
	}
	for _, want := range []string{"Plan fleet-test over 4 set(s)", "paris   completed", "bad     failed", "nantes  completed"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, stdout)
		}
	}
	// Each set has its own journal, named PLAN@SET.
	for _, site := range []string{"paris", "bad"} {
		if _, err := os.Stat(filepath.Join(dir, ".migrun", "fleet-test@"+site+".journal.json")); err != nil {
			t.Error(err)
		}
	}

	// Again: done sets are done before, the failed one waits for a person.
	code, stdout, _ = cli(t, nil, "apply", "--yes", "--inventory", inv, "--output", "json", planFile)
	if code != exitRefused {
		t.Fatalf("second apply: exit %d, want 3 (bad is unfinished)\n%s", code, stdout)
	}
	outcomes := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n") {
		var l fleetLine
		if json.Unmarshal([]byte(line), &l) == nil && l.Type == "set_end" {
			outcomes[l.Set] = l.Outcome
		}
	}
	if fmt.Sprint(outcomes) != "map[bad:unfinished lyon:done before nantes:done before paris:done before]" {
		t.Errorf("second apply's outcomes: %v", outcomes)
	}

	code, stdout, _ = cli(t, nil, "status", "--inventory", inv, planFile)
	if code != 0 || !strings.Contains(stdout, "bad     failed") || !strings.Contains(stdout, "write: ") || !strings.Contains(stdout, "lyon    completed") {
		t.Fatalf("status --inventory: %d\n%s", code, stdout)
	}
}

func TestCLIFleetAnsible(t *testing.T) {
	planFile, dir := writePlan(t, fleetPlan)
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o755)
	inv := filepath.Join(dir, "hosts.ini")
	os.WriteFile(inv, []byte(fmt.Sprintf(`[managers]
engine1.example.com ansible_host=10.0.0.11 site=one
engine2.example.com site=two
[managers:vars]
out=%s
ansible_user=root
[other]
grafana.example.com site=three
`, out)), 0o644)
	code, stdout, stderr := cli(t, nil, "apply", "--yes", "--inventory", inv, "--limit", "managers", "--host-var", "addr", planFile)
	if code != 0 {
		t.Fatalf("apply over an Ansible inventory: exit %d\n%s\n%s", code, stdout, stderr)
	}
	for site, want := range map[string]string{"one": "10.0.0.11\n", "two": "engine2.example.com\n"} {
		if b, _ := os.ReadFile(filepath.Join(out, site)); string(b) != want {
			t.Errorf("site %s: %q, want %q", site, b, want)
		}
	}
	if _, err := os.Stat(filepath.Join(out, "three")); err == nil {
		t.Error("--limit managers ran a host of another group")
	}
}

func TestCLIFleetRefusals(t *testing.T) {
	planFile, dir := writePlan(t, fleetPlan)
	inv := filepath.Join(dir, "fleet.yaml")
	os.WriteFile(inv, []byte("version: 1\nsets:\n  - {name: a, vars: {site: a}}\n  - {name: b, vars: {sit: b}}\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "--yes", "--inventory", inv, planFile}, `set b: the plan has no var "sit"`},
		{[]string{"apply", "--yes", "--limit", "g", planFile}, "--limit and --host-var select from an --inventory"},
		{[]string{"apply", "--yes", "--parallel", "2", planFile}, "--parallel runs the sets of an --inventory"},
		{[]string{"apply", "--yes", "--inventory", inv, "--parallel", "0", planFile}, "--parallel: want at least 1"},
		{[]string{"apply", "--yes", "--inventory", inv, "--host-var", "addr", planFile}, "is a migrun inventory"},
	} {
		code, _, stderr := cli(t, nil, tt.args...)
		if code != exitInvalid || !strings.Contains(stderr, tt.want) {
			t.Errorf("%v: exit %d, %q; want exit 2 with %q", tt.args, code, stderr, tt.want)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 2 {
		t.Errorf("a refused fleet wrote something: %v", entries)
	}
}
