//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestKindsOnHosts runs the kinds no shipped plan exercises on the test
// hosts against the real programs there: config_set on the three file
// formats, line, and package (dpkg-query on Debian; the hosts have no
// network, so only what is installed, or absent, is asked for).
func TestKindsOnHosts(t *testing.T) {
	id := uniq(t)
	dir := "/tmp/e2e-kinds-" + id
	sshOut(t, "engine", "mkdir -p "+dir+` && printf '# engine settings\nA="1"\n' > `+dir+`/s.conf && printf '[main]\nkey = old\n' > `+dir+`/x.ini && printf 'a.b=1\n' > `+dir+`/p.properties && printf 'one\nthree\n' > `+dir+`/lines.txt`)
	t.Cleanup(func() { _, _ = sshRun("engine", "rm -rf "+dir) })
	planFile := writePlan(t, `version: 1
name: e2e-kinds-`+id+`
vars:
  dir: `+dir+`
`+hostsYAML()+`steps:
  - id: shell-file
    host: engine
    config_set: {file: "${dir}/s.conf", format: shell, values: {A: "2", B: "two words"}}
  - id: ini-file
    host: engine
    config_set: {file: "${dir}/x.ini", format: ini, section: main, values: {key: new}}
  - id: properties-file
    host: engine
    config_set: {file: "${dir}/p.properties", format: properties, values: {a.b: "2", c: "x:y"}}
  - id: insert-line
    host: engine
    line: {file: "${dir}/lines.txt", line: two, after: "^one$"}
  - id: installed-package
    host: db
    package: {names: [openssh-server, postgresql-15]}
  - id: absent-package
    host: db
    package: {names: [migrun-no-such-package], state: absent}
`)
	state := t.TempDir()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], planFile, "apply", "--yes", "--state-dir", state)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	for _, want := range []string{"installed-package", "absent-package"} {
		if !strings.Contains(res.out, want) {
			t.Errorf("output lacks %s", want)
		}
	}
	if got := sshOut(t, "engine", "cat "+dir+"/s.conf"); got != "# engine settings\nA=\"2\"\nB=\"two words\"" {
		t.Errorf("s.conf:\n%s", got)
	}
	if got := sshOut(t, "engine", "cat "+dir+"/x.ini"); got != "[main]\nkey = new" {
		t.Errorf("x.ini:\n%s", got)
	}
	if got := sshOut(t, "engine", "cat "+dir+"/p.properties"); !strings.Contains(got, "a.b=2") || !strings.Contains(got, "c=x:y") {
		t.Errorf("p.properties:\n%s", got)
	}
	if got := sshOut(t, "engine", "cat "+dir+"/lines.txt"); got != "one\ntwo\nthree" {
		t.Errorf("lines.txt:\n%s", got)
	}
	// Everything is in place now: a restart finds every step done.
	res = runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], planFile, "apply", "--yes", "--restart", "--state-dir", state)
	if res.code != 0 || strings.Count(res.out, "already done") != 6 {
		t.Errorf("second run: exit %d, want all 6 steps already done", res.code)
	}
}
