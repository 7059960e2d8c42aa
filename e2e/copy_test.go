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

// TestCopyDirectKeysElsewhere: the target's sshd reads keys from a central
// AuthorizedKeysFile, then only from an AuthorizedKeysCommand. The direct
// copy puts its key where sshd looks (sshd -T), and where it cannot, the
// dry run says so and the copy goes through the workstation, announced.
func TestCopyDirectKeysElsewhere(t *testing.T) {
	known := env["MIGRUN_E2E_KNOWN_HOSTS"]
	config := sshOut(t, "db", "cat /etc/ssh/sshd_config")
	reload := "pkill -HUP -P 1 -x sshd && sleep 0.5"
	t.Cleanup(func() {
		sshOut(t, "db", "cp /etc/ssh/sshd_config.migrun-test /etc/ssh/sshd_config && rm -rf /etc/ssh/authorized_keys /etc/ssh/central-keys && "+reload)
		if got := sshOut(t, "db", "cat /etc/ssh/sshd_config"); got != config {
			t.Errorf("db's sshd_config not restored")
		}
	})
	sshOut(t, "db", "cp /etc/ssh/sshd_config /etc/ssh/sshd_config.migrun-test")
	sshOut(t, "engine", "head -c 5M /dev/urandom > /var/tmp/central.bin")

	run := func(name string) (dry, applied runResult, journal string) {
		planFile := writePlan(t, fmt.Sprintf(`version: 1
name: %s
hosts:
  engine: {address: %s, user: root}
  db: {address: %s, user: root}
steps:
  - id: file
    copy: {from: "engine:/var/tmp/central.bin", to: "db:/var/tmp/%s.bin", direct: true}
`, name, ip("engine"), ip("db"), name))
		state := t.TempDir()
		dry = runMigrun(t, known, planFile, "plan", "--state-dir", state)
		applied = runMigrun(t, known, planFile, "apply", "--yes", "--state-dir", state)
		if applied.code != 0 {
			t.Fatalf("%s: apply: exit %d\n%s", name, applied.code, applied.out)
		}
		if a, b := sshOut(t, "engine", "sha256sum /var/tmp/central.bin | cut -d' ' -f1"), sshOut(t, "db", "sha256sum /var/tmp/"+name+".bin | cut -d' ' -f1"); a != b {
			t.Errorf("%s: sha256 %s on engine, %s on db", name, a, b)
		}
		return dry, applied, fmt.Sprint(planJournal(t, state, name)["steps"])
	}

	// A central file, as some hardened or LDAP-managed hosts have: the
	// harness's own key moves there, ~/.ssh/authorized_keys is not read.
	sshOut(t, "db", `install -d -m 0755 /etc/ssh/authorized_keys && install -m 0644 /root/.ssh/authorized_keys /etc/ssh/authorized_keys/root &&
sed -i 's|^AuthorizedKeysFile.*|AuthorizedKeysFile /etc/ssh/authorized_keys/%u|' /etc/ssh/sshd_config && `+reload)
	central := sshOut(t, "db", "cat /etc/ssh/authorized_keys/root")
	dry, _, ran := run("central-keys")
	if !strings.Contains(dry.out, "directly: engine sends it to root@"+ip("db")+":22") || !strings.Contains(dry.out, "in /etc/ssh/authorized_keys/root") {
		t.Errorf("dry run does not name the central file:\n%s", dry.out)
	}
	if !strings.Contains(ran, "ssh -i /tmp/migrun-direct-") {
		t.Errorf("the copy did not go direct: %s", ran)
	}
	if after := sshOut(t, "db", "cat /etc/ssh/authorized_keys/root"); after != central {
		t.Errorf("the copy's key is still in the central file:\n%s", after)
	}

	// Keys only from a command (FreeIPA/SSSD's sss_ssh_authorizedkeys):
	// no file to add a key to, so the bytes go through the workstation.
	sshOut(t, "db", `install -m 0644 /etc/ssh/authorized_keys/root /etc/ssh/central-keys &&
sed -i 's|^AuthorizedKeysFile.*|AuthorizedKeysFile none\nAuthorizedKeysCommand /bin/cat /etc/ssh/central-keys\nAuthorizedKeysCommandUser nobody|' /etc/ssh/sshd_config && `+reload)
	dry, _, ran = run("command-keys")
	want := "not directly: on db, sshd reads keys only from AuthorizedKeysCommand (/bin/cat /etc/ssh/central-keys), where migrun cannot add one; the copy goes through the workstation"
	if !strings.Contains(dry.out, want) {
		t.Errorf("dry run lacks %q:\n%s", want, dry.out)
	}
	if strings.Contains(ran, "ssh -i /tmp/migrun-direct-") || !strings.Contains(ran, "copied through the workstation") {
		t.Errorf("the copy was not relayed, announced: %s", ran)
	}
}
