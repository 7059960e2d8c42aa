//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// TestCopyDirect: with `direct: true` the source host sends the file to
// the target itself, with access made for the copy and removed after.
func TestCopyDirect(t *testing.T) {
	known := env["MIGRUN_E2E_KNOWN_HOSTS"]
	sshOut(t, "engine", "head -c 24M /dev/urandom > /var/tmp/direct.bin && mkdir -p /var/tmp/direct.d && head -c 3M /dev/zero | tr '\\0' x > /var/tmp/direct.d/a && echo b > /var/tmp/direct.d/b")
	// An earlier attempt left 2.5 MiB of a: the direct copy resumes (from
	// the last whole MiB but one) instead of starting over.
	sshOut(t, "db", "rm -rf /var/tmp/direct.bin /var/tmp/direct.d && mkdir /var/tmp/direct.d && head -c 2621440 /dev/zero | tr '\\0' x > /var/tmp/direct.d/a.migrun-part")
	keysBefore := sshOut(t, "db", "cat /root/.ssh/authorized_keys")
	planFile := writePlan(t, fmt.Sprintf(`version: 1
name: copy-direct
hosts:
  engine: {address: %s, user: root}
  db: {address: %s, user: root}
steps:
  - id: file
    copy: {from: "engine:/var/tmp/direct.bin", to: "db:/var/tmp/direct.bin", mode: "0640", direct: true}
  - id: tree
    copy: {from: "engine:/var/tmp/direct.d", to: "db:/var/tmp/direct.d", direct: true}
`, ip("engine"), ip("db")))
	state := t.TempDir()

	res := runMigrun(t, known, planFile, "plan", "--state-dir", state)
	if res.code != 0 || !strings.Contains(res.out, "directly: engine sends it to root@"+ip("db")+":22") {
		t.Fatalf("dry run: exit %d, want the direct route described", res.code)
	}
	res = runMigrun(t, known, planFile, "apply", "--yes", "--state-dir", state)
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	for _, f := range []string{"/var/tmp/direct.bin", "/var/tmp/direct.d/a", "/var/tmp/direct.d/b"} {
		if a, b := sshOut(t, "engine", "sha256sum "+f+" | cut -d' ' -f1"), sshOut(t, "db", "sha256sum "+f+" | cut -d' ' -f1"); a != b {
			t.Errorf("%s: sha256 %s on engine, %s on db", f, a, b)
		}
	}
	if got := sshOut(t, "db", "stat -c %a /var/tmp/direct.bin"); got != "640" {
		t.Errorf("mode %s, want 640", got)
	}
	if after := sshOut(t, "db", "cat /root/.ssh/authorized_keys"); after != keysBefore {
		t.Errorf("the copy's key is still authorized on db:\n%s", after)
	}
	if left := sshOut(t, "engine", "ls -d /tmp/migrun-direct-* 2>/dev/null || true"); left != "" {
		t.Errorf("the copy's key directory is still on engine: %s", left)
	}
	// The bytes went engine -> db: the journal shows the source's ssh.
	ran := fmt.Sprint(planJournal(t, state, "copy-direct")["steps"])
	if !strings.Contains(ran, "engine: sh -c 'tail -c +1048577 -- /var/tmp/direct.d/a | ssh -i /tmp/migrun-direct-") || !strings.Contains(ran, "resumed from 1 MiB already there") {
		t.Errorf("the journal does not show the resumed direct transfer of a: %s", ran)
	}
	if !strings.Contains(ran, "engine: sh -c '< /var/tmp/direct.bin ssh -i /tmp/migrun-direct-") {
		t.Errorf("the journal does not show the direct transfer: %s", ran)
	}
}
