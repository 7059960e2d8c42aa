package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors/sshtest"
	"golang.org/x/crypto/ssh"
)

// sshPair is two in-process SSH servers standing for the engine and db
// hosts, with a client key and a known_hosts file trusting both.
type sshPair struct {
	engine, db *sshtest.Server
	identity   string
	knownHosts string
	dir        string
}

func newSSHPair(t *testing.T) *sshPair {
	signer, priv := sshtest.NewKey(t)
	opts := sshtest.Options{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}}
	p := &sshPair{engine: sshtest.Start(t, opts), db: sshtest.Start(t, opts), dir: t.TempDir()}
	p.identity = sshtest.WriteIdentity(t, priv, nil)
	p.knownHosts = filepath.Join(p.dir, "known_hosts")
	p.writeKnownHosts(t, p.engine, p.db)
	return p
}

func (p *sshPair) writeKnownHosts(t *testing.T, servers ...*sshtest.Server) {
	var lines []string
	for _, s := range servers {
		lines = append(lines, s.KnownHostsLine())
	}
	if err := os.WriteFile(p.knownHosts, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *sshPair) plan(t *testing.T) string {
	text := fmt.Sprintf(`version: 1
name: ssh-test
vars:
  dir: %[1]s
hosts:
  engine: {address: 127.0.0.1, port: %[2]d, user: migrun}
  db: {address: 127.0.0.1, port: %[3]d, user: migrun}
steps:
  - id: make-dump
    host: engine
    command:
      script: head -c 3000000 /dev/urandom > ${dir}/engine.dump && touch ${dir}/ran-on-engine
      creates: ${dir}/engine.dump
  - id: copy-dump
    copy: {from: "engine:${dir}/engine.dump", to: "db:${dir}/db.dump", mode: "0640"}
  - id: check-on-db
    host: db
    command:
      argv: [cmp, "${dir}/engine.dump", "${dir}/db.dump"]
`, p.dir, p.engine.Port(), p.db.Port())
	f := filepath.Join(p.dir, "plan.yaml")
	if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (p *sshPair) args(extra ...string) []string {
	return append([]string{"--known-hosts", p.knownHosts, "--identity", p.identity, "--ssh-config", "none"}, extra...)
}

func TestCLIApplyOverSSH(t *testing.T) {
	p := newSSHPair(t)
	planFile := p.plan(t)
	code, out, errOut := cli(t, nil, append([]string{"apply", "--yes", planFile}, p.args()...)...)
	if code != 0 {
		t.Fatalf("apply over SSH: exit %d\n%s\n%s", code, out, errOut)
	}
	fi, err := os.Stat(filepath.Join(p.dir, "db.dump"))
	if err != nil || fi.Size() != 3000000 || fi.Mode().Perm() != 0o640 {
		t.Fatalf("copied dump: %v %v", fi, err)
	}
	// One connection per host, reused by every step (and the checks).
	if p.engine.Handshakes() != 1 || p.db.Handshakes() != 1 {
		t.Fatalf("handshakes engine %d db %d, want 1 each", p.engine.Handshakes(), p.db.Handshakes())
	}
}

func TestCLIHostKeyRefusals(t *testing.T) {
	t.Run("unknown host refused before anything runs", func(t *testing.T) {
		p := newSSHPair(t)
		p.writeKnownHosts(t, p.engine) // db missing
		planFile := p.plan(t)
		code, out, errOut := cli(t, nil, append([]string{"apply", "--yes", planFile}, p.args()...)...)
		if code != 1 || !strings.Contains(out+errOut, "SHA256:") || !strings.Contains(out+errOut, "--accept-new-host-keys") {
			t.Fatalf("exit %d, want 1 with the fingerprint and the flag named:\n%s\n%s", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "ran-on-engine")); err == nil {
			t.Fatal("a step ran on engine although db's key was unknown")
		}
		if _, err := os.Stat(filepath.Join(p.dir, ".migrun", "ssh-test.journal.json")); err == nil {
			t.Fatal("a refused connection left a journal")
		}
		// Accepting new keys records db's key and runs.
		code, _, errOut = cli(t, nil, append([]string{"apply", "--yes", "--accept-new-host-keys", planFile}, p.args()...)...)
		if code != 0 {
			t.Fatalf("with --accept-new-host-keys: exit %d %s", code, errOut)
		}
		kh, _ := os.ReadFile(p.knownHosts)
		if !strings.Contains(string(kh), fmt.Sprintf("[127.0.0.1]:%d", p.db.Port())) {
			t.Fatalf("known_hosts not updated:\n%s", kh)
		}
	})
	t.Run("changed key always refused", func(t *testing.T) {
		p := newSSHPair(t)
		newKey, _ := sshtest.NewKey(t)
		p.db.SetHostKey(newKey)
		planFile := p.plan(t)
		code, out, errOut := cli(t, nil, append([]string{"apply", "--yes", "--accept-new-host-keys", planFile}, p.args()...)...)
		if code != 1 || !strings.Contains(out+errOut, "CHANGED") {
			t.Fatalf("exit %d, want 1 with a changed-key refusal:\n%s\n%s", code, out, errOut)
		}
		if _, err := os.Stat(filepath.Join(p.dir, "ran-on-engine")); err == nil {
			t.Fatal("a step ran although db's key changed")
		}
	})
}
