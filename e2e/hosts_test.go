//go:build e2e

// End-to-end tests that run migrun against real hosts:
// the throwaway hosts `engine` and `db` that e2e/hosts/up.sh brings up on
// this machine (network, mount, PID namespaces with their own sshd and
// PostgreSQL 15). Root only.
//
//	make e2e                              # up.sh, the tests, down.sh
//	MIGRUN_E2E_HOSTS_UP=1 make e2e        # hosts already up: leave them up
//	MIGRUN_E2E_KEEP=1 make e2e            # bring them up, leave them up
//	MIGRUN_E2E_BIN=/path/migrun make e2e  # test this binary, build nothing

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

var (
	repoRoot string
	hostsDir string
	env      map[string]string // MIGRUN_E2E_* from e2e/hosts/env.sh
	migrun   string            // the binary under test
	buildErr error             // why there is none
)

func TestMain(m *testing.M) { os.Exit(mainE2E(m)) }

func mainE2E(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "e2e: the test hosts need root (network and mount namespaces): run as root")
		return 1
	}
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	hostsDir = filepath.Join(repoRoot, "e2e", "hosts")

	if os.Getenv("MIGRUN_E2E_HOSTS_UP") != "1" {
		start := time.Now()
		if err := script("up.sh"); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: up.sh:", err)
			_ = script("down.sh")
			return 1
		}
		fmt.Fprintf(os.Stderr, "e2e: hosts up in %s\n", time.Since(start).Round(100*time.Millisecond))
		if os.Getenv("MIGRUN_E2E_KEEP") != "1" {
			defer func() {
				if err := script("down.sh"); err != nil {
					fmt.Fprintln(os.Stderr, "e2e: down.sh:", err)
				}
			}()
		}
	}
	if env, err = loadEnv(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if _, err := os.Stat(env["MIGRUN_E2E_SSH_CONFIG"]); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: the test hosts are not up (run e2e/hosts/up.sh, or unset MIGRUN_E2E_HOSTS_UP):", err)
		return 1
	}
	tmp, err := os.MkdirTemp("", "migrun-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	migrun, buildErr = buildMigrun(tmp)
	if buildErr != nil {
		fmt.Fprintln(os.Stderr, "e2e: building migrun failed; the tests that run it will fail:", buildErr)
	}
	return m.Run()
}

// script runs e2e/hosts/NAME with its output on stderr.
func script(name string) error {
	cmd := exec.Command(filepath.Join(hostsDir, name))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	return cmd.Run()
}

// loadEnv reads the MIGRUN_E2E_* variables env.sh defines.
func loadEnv() (map[string]string, error) {
	out, err := exec.Command("bash", "-c", `. "$1" && env -0`, "bash", filepath.Join(hostsDir, "env.sh")).Output()
	if err != nil {
		return nil, fmt.Errorf("env.sh: %w", err)
	}
	m := map[string]string{}
	for _, kv := range strings.Split(string(out), "\x00") {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MIGRUN_E2E_") {
			m[k] = v
		}
	}
	for _, k := range []string{"MIGRUN_E2E_ENGINE_IP", "MIGRUN_E2E_DB_IP", "MIGRUN_E2E_IDENTITY", "MIGRUN_E2E_KNOWN_HOSTS", "MIGRUN_E2E_SSH_CONFIG"} {
		if m[k] == "" {
			return nil, fmt.Errorf("env.sh does not define %s", k)
		}
	}
	return m, nil
}

func buildMigrun(dir string) (string, error) {
	if bin := os.Getenv("MIGRUN_E2E_BIN"); bin != "" {
		return bin, nil
	}
	bin := filepath.Join(dir, "migrun")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/migrun")
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/migrun: %v\n%s", err, out)
	}
	return bin, nil
}

// --- helpers ------------------------------------------------------------------

func ip(host string) string { return env["MIGRUN_E2E_"+strings.ToUpper(host)+"_IP"] }

// sshOut runs a shell command on a test host with plain OpenSSH and the
// harness's ssh_config; it fails the test unless the command exits 0.
func sshOut(t *testing.T, host, command string) string {
	t.Helper()
	out, err := sshRun(host, command)
	if err != nil {
		t.Fatalf("ssh %s %q: %v\n%s", host, command, err, out)
	}
	return strings.TrimSpace(out)
}

// sshRun is sshOut that returns the error (an *exec.ExitError for a
// non-zero exit) and stdout+stderr.
func sshRun(host, command string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ssh", "-F", env["MIGRUN_E2E_SSH_CONFIG"], host, command).CombinedOutput()
	return string(out), err
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func uniq(t *testing.T) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// hostsYAML is the plan's hosts section for the two test hosts.
func hostsYAML() string {
	return fmt.Sprintf("hosts:\n  engine: {address: %q, user: root}\n  db: {address: %q, user: root}\n",
		ip("engine"), ip("db"))
}

type runResult struct {
	out  string
	code int
}

// runMigrun runs the binary under test with the harness's key files; args
// come first (the subcommand and its flags), the plan last.
func runMigrun(t *testing.T, knownHosts, planFile string, args ...string) runResult {
	t.Helper()
	return runMigrunAs(t, nil, knownHosts, planFile, args...)
}

// runMigrunAs is runMigrun through a command prefix (see asWorkstation).
func runMigrunAs(t *testing.T, prefix []string, knownHosts, planFile string, args ...string) runResult {
	t.Helper()
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	argv := append(args,
		"--known-hosts", knownHosts,
		"--identity", env["MIGRUN_E2E_IDENTITY"],
		"--ssh-config", "none",
		"--connect-timeout", "10s",
		planFile)
	full := append(append(append([]string{}, prefix...), migrun), argv...)
	cmd := exec.CommandContext(ctx, full[0], full[1:]...)
	cmd.Env = append(os.Environ(), "SSH_AUTH_SOCK=") // the agent plays no part
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	start := time.Now()
	err := cmd.Run()
	res := runResult{out: buf.String(), code: exitCode(err)}
	t.Logf("migrun %s (exit %d, %s):\n%s", strings.Join(argv, " "), res.code, time.Since(start).Round(time.Millisecond), indent(res.out))
	return res
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		b.WriteString("    | " + sc.Text() + "\n")
	}
	return b.String()
}

func writePlan(t *testing.T, body string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "plan.yaml")
	if err := os.WriteFile(f, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func assertAbsent(t *testing.T, host, path string) {
	t.Helper()
	out, err := sshRun(host, "test ! -e "+path)
	if err != nil {
		t.Errorf("%s:%s exists but should not (%v %s)", host, path, err, out)
	}
}

// --- the hosts themselves -------------------------------------------------------

func TestHostsSSHConfig(t *testing.T) {
	for _, h := range []string{"engine", "db"} {
		if got := sshOut(t, h, "hostname"); got != h {
			t.Errorf("ssh -F ssh_config %s hostname = %q", h, got)
		}
	}
}

func TestHostsIsolation(t *testing.T) {
	id := uniq(t)
	tmpMarker := "/tmp/e2e-isolation-" + id
	sshOut(t, "engine", "echo engine > "+tmpMarker)
	assertAbsent(t, "db", tmpMarker)
	if _, err := os.Stat(tmpMarker); !os.IsNotExist(err) {
		t.Errorf("engine's %s is visible on the workstation (err %v)", tmpMarker, err)
	}
	sshOut(t, "db", "echo db > "+tmpMarker)
	if got := sshOut(t, "engine", "cat "+tmpMarker); got != "engine" {
		t.Errorf("engine:%s = %q after db wrote its own", tmpMarker, got)
	}

	// /etc/ovirt-engine exists on both and is each host's own.
	etcMarker := "/etc/ovirt-engine/e2e-isolation-" + id
	sshOut(t, "engine", "test -d /etc/ovirt-engine && test -d /etc/ovirt-engine-dwh && echo x > "+etcMarker)
	assertAbsent(t, "db", etcMarker)
	if _, err := os.Stat(etcMarker); !os.IsNotExist(err) {
		t.Errorf("engine's %s is visible on the workstation (err %v)", etcMarker, err)
	}
	sshOut(t, "engine", "rm -f "+tmpMarker+" "+etcMarker)
	sshOut(t, "db", "rm -f "+tmpMarker)

	// Each host sees its own processes only.
	if out, err := sshRun("db", "pgrep -x ovirt-engine"); exitCode(err) != 1 {
		t.Errorf("db sees an ovirt-engine process (exit %d): %s", exitCode(err), out)
	}
	sshOut(t, "engine", "pgrep -x ovirt-engine")
	// One postmaster per host, each on its own data dir and socket.
	for _, h := range []string{"engine", "db"} {
		got := sshOut(t, h, "runuser -u postgres -- psql -X -Atc 'show data_directory' 2>/dev/null")
		if got != env["MIGRUN_E2E_PGDATA"] {
			t.Errorf("%s: data_directory = %q", h, got)
		}
	}
}

// PostgreSQL on db starts as a fresh server: localhost only, and the
// firewall rejects 5432; the unix socket works.
func TestHostsDBPostgresFirewalled(t *testing.T) {
	addr := net.JoinHostPort(ip("db"), "5432")
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("%s accepted a connection from the workstation", addr)
	}
	// icmp-host-prohibited from iptables, not a closed port's RST.
	if !errors.Is(err, syscall.EHOSTUNREACH) {
		t.Errorf("dial %s: %v; want EHOSTUNREACH (the REJECT rule in db's INPUT chain)", addr, err)
	}
	// sshd on the same host answers, so the network is up.
	conn, err = net.DialTimeout("tcp", net.JoinHostPort(ip("db"), "22"), 5*time.Second)
	if err != nil {
		t.Fatalf("db's sshd: %v", err)
	}
	conn.Close()

	rules := sshOut(t, "db", "iptables -S INPUT")
	if !strings.Contains(rules, "--dport 5432 -j REJECT") {
		t.Errorf("db's INPUT chain has no REJECT for 5432:\n%s", rules)
	}
	if n := strings.Count(rules, "\n-A INPUT"); n < 5 {
		t.Errorf("db's INPUT chain has %d rules, want at least 5 (inserting at position 5 must mean something):\n%s", n, rules)
	}
	if got := sshOut(t, "db", "runuser -u postgres -- psql -X -Atc 'show listen_addresses' 2>/dev/null"); got != "localhost" {
		t.Errorf("db listen_addresses = %q, want localhost", got)
	}
	if got := sshOut(t, "db", "cd / && runuser -u postgres -- psql -X -Atc 'select 40 + 2'"); got != "42" {
		t.Errorf("psql over db's socket: %q", got)
	}
	if got := sshOut(t, "db", "cd / && sudo -n -u postgres psql -X -Atc \"select pg_encoding_to_char(encoding) || ' ' || datcollate from pg_database where datname = 'postgres'\""); got != "UTF8 en_US.UTF-8" {
		t.Errorf("db cluster encoding, collation = %q", got)
	}
}

// The engine's database is reachable over the network with the password.
func TestHostsEngineDatabase(t *testing.T) {
	pw, err := os.ReadFile(env["MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(env["MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE"]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("password file mode: %v %v", fi.Mode(), err)
	}
	cmd := exec.Command("psql", "-X", "-At", "-h", ip("engine"), "-U", "engine", "-d", "engine",
		"-c", "select count(*) from vm_static",
		"-c", "select count(*) > 0 from audit_log",
		"-c", "select extname from pg_extension where extname = 'uuid-ossp'",
		"-c", "select pg_get_userbyid(datdba) from pg_database where datname = 'engine'")
	cmd.Env = append(os.Environ(), "PGPASSWORD="+strings.TrimSpace(string(pw)), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql to engine's database over TCP: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "200\nt\nuuid-ossp\nengine"; got != want {
		t.Errorf("engine database:\n%s\nwant:\n%s", got, want)
	}
}

// The stand-in systemctl and service answer for the hosts' services.
func TestHostsStandInInit(t *testing.T) {
	sshOut(t, "db", "systemctl restart postgresql && systemctl is-active postgresql && service postgresql status >/dev/null")
	if got := sshOut(t, "db", "cd / && runuser -u postgres -- psql -X -Atc 'select 1'"); got != "1" {
		t.Errorf("db's postgres after a restart: %q", got)
	}
	if out, err := sshRun("db", "systemctl start ovirt-engine"); exitCode(err) != 5 || !strings.Contains(out, "not found") {
		t.Errorf("systemctl start ovirt-engine on db: exit %d, %q; want exit 5, not found", exitCode(err), out)
	}

	sshOut(t, "engine", "systemctl stop ovirt-engine.service")
	if out, err := sshRun("engine", "systemctl is-active ovirt-engine"); exitCode(err) != 3 || strings.TrimSpace(out) != "inactive" {
		t.Errorf("is-active after stop: exit %d, %q", exitCode(err), out)
	}
	if out, err := sshRun("engine", "pgrep -x ovirt-engine"); exitCode(err) != 1 {
		t.Errorf("an ovirt-engine process is left after stop: %s", out)
	}
	if got := sshOut(t, "engine", "systemctl start ovirt-engine && systemctl is-active ovirt-engine"); got != "active" {
		t.Errorf("is-active after start: %q", got)
	}
	if got := sshOut(t, "engine", "systemctl disable ovirt-engine-dwhd >/dev/null; systemctl is-enabled ovirt-engine-dwhd; systemctl enable ovirt-engine-dwhd >/dev/null; systemctl is-enabled ovirt-engine-dwhd"); got != "disabled\nenabled" {
		t.Errorf("disable, enable: %q", got)
	}
	if out, err := sshRun("engine", "systemctl reload postgresql && systemctl status postgresql --no-pager -n 5"); err != nil || !strings.Contains(out, "Active: active (running)") {
		t.Errorf("reload, status: %v\n%s", err, out)
	}
}

// --- migrun against the hosts -------------------------------------------------------

// A plan over SSH: a command on each host and a 20 MB copy from engine to db
// (host to host, through the workstation), checked by sha256 on db.
func TestMigrunApplyOverSSH(t *testing.T) {
	id := uniq(t)
	big := "/tmp/e2e-big-" + id + ".bin"
	hello := "/tmp/e2e-hello-" + id
	planFile := writePlan(t, `version: 1
name: e2e-apply-`+id+`
description: commands on both hosts and a copy from engine to db
vars:
  big: `+big+`
  hello: `+hello+`
`+hostsYAML()+`steps:
  - id: engine-hello
    host: engine
    command: "hostname > ${hello}"
  - id: db-hello
    host: db
    command:
      argv: [sh, -c, "hostname > ${hello}"]
  - id: make-big
    host: engine
    command: "head -c 20971520 /dev/urandom > ${big}"
  - id: copy-big
    copy: {from: "engine:${big}", to: "db:${big}", mode: "0600"}
`)
	t.Cleanup(func() {
		_, _ = sshRun("engine", "rm -f "+big+" "+hello)
		_, _ = sshRun("db", "rm -f "+big+" "+hello)
	})
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], planFile, "apply", "--yes", "--state-dir", t.TempDir())
	if res.code != 0 {
		t.Fatalf("apply: exit %d", res.code)
	}
	if got := sshOut(t, "engine", "cat "+hello); got != "engine" {
		t.Errorf("engine:%s = %q", hello, got)
	}
	if got := sshOut(t, "db", "cat "+hello); got != "db" {
		t.Errorf("db:%s = %q", hello, got)
	}
	src := strings.Fields(sshOut(t, "engine", "sha256sum "+big))[0]
	dst := sshOut(t, "db", "sha256sum "+big+" && stat -c '%s %a' "+big)
	if f := strings.Fields(dst); len(f) != 4 || f[0] != src || f[2] != "20971520" || f[3] != "600" {
		t.Errorf("db:%s: %q; want sha256 %s, 20971520 bytes, mode 600", big, dst, src)
	}
}

// A dry run connects and checks but changes nothing on either host and
// writes no journal.
func TestMigrunDryRunChangesNothing(t *testing.T) {
	id := uniq(t)
	marker := "/tmp/e2e-dry-" + id
	src := "/tmp/e2e-dry-src-" + id
	sshOut(t, "engine", "echo data > "+src)
	t.Cleanup(func() { _, _ = sshRun("engine", "rm -f "+src) })
	planFile := writePlan(t, `version: 1
name: e2e-dry-`+id+`
`+hostsYAML()+`steps:
  - id: engine-marker
    host: engine
    command: "touch `+marker+`"
  - id: db-marker
    host: db
    command:
      argv: [touch, `+marker+`]
      creates: `+marker+`
  - id: copy
    copy: {from: "engine:`+src+`", to: "db:`+src+`"}
`)
	state := t.TempDir()
	res := runMigrun(t, env["MIGRUN_E2E_KNOWN_HOSTS"], planFile, "plan", "--state-dir", state)
	if res.code != 0 {
		t.Fatalf("plan: exit %d", res.code)
	}
	assertAbsent(t, "engine", marker)
	assertAbsent(t, "db", marker)
	assertAbsent(t, "db", src)
	if ents, _ := os.ReadDir(state); len(ents) != 0 {
		t.Errorf("the dry run wrote into the state dir: %v", ents)
	}
}

// A host whose key changed is refused before any step runs, on any host.
func TestMigrunChangedHostKeyRefused(t *testing.T) {
	dir := t.TempDir()
	// A known_hosts whose line for db holds another key.
	kh, err := os.ReadFile(env["MIGRUN_E2E_KNOWN_HOSTS"])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "other")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	other, err := os.ReadFile(filepath.Join(dir, "other.pub"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	replaced := false
	for _, l := range strings.Split(strings.TrimSpace(string(kh)), "\n") {
		f := strings.Fields(l)
		if len(f) >= 3 && f[0] == ip("db") {
			l = f[0] + " " + strings.Join(strings.Fields(string(other))[:2], " ")
			replaced = true
		}
		lines = append(lines, l)
	}
	if !replaced {
		t.Fatalf("no line for %s in %s", ip("db"), env["MIGRUN_E2E_KNOWN_HOSTS"])
	}
	tampered := filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(tampered, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	id := uniq(t)
	marker := "/tmp/e2e-hostkey-" + id
	planFile := writePlan(t, `version: 1
name: e2e-hostkey-`+id+`
`+hostsYAML()+`steps:
  - id: engine-first
    host: engine
    command: "touch `+marker+`"
  - id: db-second
    host: db
    command: "touch `+marker+`"
`)
	res := runMigrun(t, tampered, planFile, "apply", "--yes", "--state-dir", t.TempDir())
	if res.code != 1 {
		t.Errorf("apply with a changed host key for db: exit %d, want 1", res.code)
	}
	if !strings.Contains(res.out, ip("db")) && !strings.Contains(res.out, "db") {
		t.Errorf("the refusal does not name db:\n%s", res.out)
	}
	assertAbsent(t, "engine", marker)
	assertAbsent(t, "db", marker)
	// Accepting new keys never accepts a changed one.
	res = runMigrun(t, tampered, planFile, "apply", "--yes", "--restart", "--accept-new-host-keys", "--state-dir", t.TempDir())
	if res.code != 1 {
		t.Errorf("apply --accept-new-host-keys with a changed host key: exit %d, want 1", res.code)
	}
	assertAbsent(t, "engine", marker)
	if after, _ := os.ReadFile(tampered); string(after) != strings.Join(lines, "\n")+"\n" {
		t.Errorf("known_hosts was rewritten:\n%s", after)
	}
}

// --- the stand-ins on engine (e2e/standin) --------------------------------------------

// engineHeartbeats counts the heartbeat rows in a database on a host.
func engineHeartbeats(t *testing.T, host, db string) int {
	t.Helper()
	out := sshOut(t, host, fmt.Sprintf(`cd / && runuser -u postgres -- psql -X -At -d %s -c "select count(*) from heartbeat"`, db))
	n, err := strconv.Atoi(out)
	if err != nil {
		t.Fatalf("heartbeat count on %s/%s: %q", host, db, out)
	}
	return n
}

func engineHealth(t *testing.T) string {
	t.Helper()
	out, _ := sshRun("engine", `curl -s -m 5 -o /dev/null -w '%{http_code}' http://localhost/ovirt-engine/services/health`)
	return strings.TrimSpace(out)
}

// waitHealth waits up to 10 s for the health URL to answer code.
func waitHealth(t *testing.T, code string) {
	t.Helper()
	var got string
	for i := 0; i < 50; i++ {
		if got = engineHealth(t); got == code {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("health answered %q, want %s", got, code)
}

// saveEngineConfig keeps engine's oVirt config and restores it, restarting
// the engine, when the test ends.
func saveEngineConfig(t *testing.T) {
	t.Helper()
	save := "/var/tmp/e2e-etc-" + uniq(t)
	sshOut(t, "engine", "mkdir -p "+save+" && cp -a /etc/ovirt-engine "+save+"/engine && cp -a /etc/ovirt-engine-dwh "+save+"/dwh")
	t.Cleanup(func() {
		out, err := sshRun("engine", "rm -rf /etc/ovirt-engine/* /etc/ovirt-engine-dwh/* && cp -a "+save+"/engine/. /etc/ovirt-engine/ && cp -a "+save+"/dwh/. /etc/ovirt-engine-dwh/ && rm -rf "+save+" && systemctl restart ovirt-engine")
		if err != nil {
			t.Errorf("restoring engine's config: %v\n%s", err, out)
		}
	})
}

func TestStandinEngineHeartbeatAndHealth(t *testing.T) {
	waitHealth(t, "200")
	if got := sshOut(t, "engine", "curl -s http://localhost/ovirt-engine/services/health"); got != "DB Up!Welcome to Health Status!" {
		t.Errorf("health body %q", got)
	}
	before := engineHeartbeats(t, "engine", "engine")
	time.Sleep(2 * time.Second)
	if d := engineHeartbeats(t, "engine", "engine") - before; d < 7 || d > 13 {
		t.Errorf("%d heartbeats in 2 s, want about 10 (one per 200 ms)", d)
	}
	if got := sshOut(t, "engine", `cd / && runuser -u postgres -- psql -X -At -d engine -c "select tableowner from pg_tables where tablename = 'heartbeat'"`); got != "engine" {
		t.Errorf("heartbeat table owner %q, want engine", got)
	}
	// Stopped: no process, no health, no heartbeats; started: back.
	sshOut(t, "engine", "systemctl stop ovirt-engine")
	if got := engineHealth(t); got == "200" {
		t.Error("health answers 200 with the engine stopped")
	}
	n := engineHeartbeats(t, "engine", "engine")
	time.Sleep(500 * time.Millisecond)
	if m := engineHeartbeats(t, "engine", "engine"); m != n {
		t.Errorf("heartbeats went on after stop: %d -> %d", n, m)
	}
	sshOut(t, "engine", "systemctl start ovirt-engine && pgrep -x ovirt-engine >/dev/null")
	waitHealth(t, "200")
	// Its database down: 500, and it recovers by itself when it is back.
	sshOut(t, "engine", "systemctl stop postgresql")
	waitHealth(t, "500")
	sshOut(t, "engine", "systemctl start postgresql")
	waitHealth(t, "200")
}

// The engine connects where ENGINE_DB_URL says: editing only ENGINE_DB_HOST
// (the guide's mistake) leaves it on the old database.
func TestStandinEngineFollowsURLNotHost(t *testing.T) {
	saveEngineConfig(t)
	sshOut(t, "engine", `sed -i 's/^ENGINE_DB_HOST=.*/ENGINE_DB_HOST="db"/' /etc/ovirt-engine/engine.conf.d/10-setup-database.conf && systemctl restart ovirt-engine`)
	waitHealth(t, "200")
	before := engineHeartbeats(t, "engine", "engine")
	time.Sleep(time.Second)
	if after := engineHeartbeats(t, "engine", "engine"); after <= before {
		t.Errorf("with only ENGINE_DB_HOST=db, heartbeats stopped landing in engine's database (%d -> %d)", before, after)
	}
	if out, err := sshRun("db", `cd / && runuser -u postgres -- psql -X -At -d engine -c "select 1"`); err == nil {
		t.Errorf("db has an engine database: %s", out)
	}
	// A later file overrides an earlier one, as in the engine: a URL in
	// 99-*.conf that names another database wins (and fails here: 500).
	sshOut(t, "engine", `echo 'ENGINE_DB_URL="jdbc:postgresql://localhost:5432/nosuchdb?sslfactory=org.postgresql.ssl.NonValidatingFactory"' > /etc/ovirt-engine/engine.conf.d/99-e2e.conf && systemctl restart ovirt-engine`)
	waitHealth(t, "500")
	if log := sshOut(t, "engine", "tail -n 3 /var/log/ovirt-engine/engine.log"); !strings.Contains(log, "nosuchdb") {
		t.Errorf("engine.log does not name the URL it tried:\n%s", log)
	}
}

func TestStandinEngineBackup(t *testing.T) {
	id := uniq(t)
	dir := "/var/tmp/e2e-backup-" + id
	archive := dir + "/engine.backup"
	t.Cleanup(func() { _, _ = sshRun("engine", "rm -rf "+dir) })
	sshOut(t, "engine", "mkdir -p "+dir)

	// Backup: the real layout.
	out := sshOut(t, "engine", "engine-backup --mode=backup --scope=all --file="+archive+" --log="+dir+"/backup.log")
	if !strings.Contains(out, "- Engine database 'engine'") || !strings.HasSuffix(out, "Done.") {
		t.Errorf("backup output:\n%s", out)
	}
	list := "\n" + sshOut(t, "engine", "tar -tzf "+archive) + "\n"
	for _, m := range []string{"./version", "./config", "./os_version", "./files", "./sha256sum", "./db/engine_backup.db", "./db/dwh_backup.db"} {
		if !strings.Contains(list, "\n"+m+"\n") {
			t.Errorf("the archive lacks %s:%s", m, list)
		}
	}
	if got := sshOut(t, "engine", "tar -xzOf "+archive+" ./version"); got != env["MIGRUN_E2E_ENGINE_VERSION"] {
		t.Errorf("./version = %q", got)
	}
	if got := sshOut(t, "engine", "tar -xzOf "+archive+" ./files | tar -tzf - | grep -c 10-setup-database.conf"); got != "2" {
		t.Errorf("./files holds %s 10-setup-database.conf, want 2 (engine's and the DWH's)", got)
	}
	sshOut(t, "engine", "engine-backup --mode=verify --file="+archive+" --log="+dir+"/verify.log")

	// The parser as the real one: --db-sec-validation, not the help's spelling.
	pwFile := env["MIGRUN_E2E_ENGINE_DB_PASSWORD_FILE"]
	pw, err := os.ReadFile(pwFile)
	if err != nil {
		t.Fatal(err)
	}
	password := strings.TrimSpace(string(pw))
	sshOut(t, "engine", fmt.Sprintf("umask 077; printf '%%s\\n' '%s' > %s/pass && cp %s/pass %s/pass644 && chmod 0644 %s/pass644", password, dir, dir, dir, dir))
	out, err = sshRun("engine", "engine-backup --mode=restore --file="+archive+" --log="+dir+"/r.log --db-secured-validation")
	if exitCode(err) != 1 || !strings.Contains(out, "FATAL: Unknown option '--db-secured-validation'") {
		t.Errorf("--db-secured-validation: exit %d\n%s", exitCode(err), out)
	}
	out, err = sshRun("engine", "engine-backup --mode=restore --file="+archive+" --log="+dir+"/r.log --change-db-credentials --db-host=localhost --db-user=engine --db-name=x --db-passfile="+dir+"/pass644")
	if exitCode(err) != 1 || !strings.Contains(out, "FATAL:") || !strings.Contains(out, "0600") {
		t.Errorf("a 0644 passfile: exit %d\n%s", exitCode(err), out)
	}
	// env -i: a password in the environment is lost.
	out, err = sshRun("engine", "OVIRT_ENGINE_DATABASE_PASSWORD=x engine-backup --mode=restore --file="+archive+" --log="+dir+"/r.log --change-db-credentials --db-host=localhost --db-user=engine --db-name=x")
	if exitCode(err) != 1 || !strings.Contains(out, "password") {
		t.Errorf("password in the environment: exit %d\n%s", exitCode(err), out)
	}
	// The engine must be stopped.
	out, err = sshRun("engine", "engine-backup --mode=restore --file="+archive+" --log="+dir+"/r.log --no-restore-permissions")
	if exitCode(err) != 1 || !strings.Contains(out, "Engine service is active") {
		t.Errorf("restore with the engine running: exit %d\n%s", exitCode(err), out)
	}

	saveEngineConfig(t)
	dbs := []string{"engine_e2e_" + id, "engine_e2e2_" + id, "engine_e2e3_" + id}
	t.Cleanup(func() {
		for _, d := range dbs {
			_, _ = sshRun("engine", "cd / && runuser -u postgres -- psql -X -q -c 'drop database if exists "+d+" with (force)'")
		}
		_, _ = sshRun("engine", "cd / && runuser -u postgres -- psql -X -q -c 'drop role if exists e2e_other'")
	})
	sshOut(t, "engine", "systemctl stop ovirt-engine")
	restore := func(db, user, pass, extra string) (string, error) {
		return sshRun("engine", "engine-backup --mode=restore --scope=db --file="+archive+" --log="+dir+"/restore-"+db+".log"+
			" --change-db-credentials --db-host=localhost --db-port=5432 --db-user="+user+" --db-name="+db+
			" --db-passfile="+dir+"/"+pass+" "+extra)
	}
	// New credentials name a database that exists: the real tool refuses
	// to provision one it is given credentials for.
	if out, err := sshRun("engine", "engine-backup --mode=restore --scope=db --file="+archive+" --log="+dir+"/r.log --provision-db --no-restore-permissions"+
		" --change-db-credentials --db-host=localhost --db-user=engine --db-name="+dbs[0]+" --db-passfile="+dir+"/pass"); exitCode(err) != 1 || !strings.Contains(out, "Cannot change credentials if provisioning a database") {
		t.Errorf("--provision-db with --change-db-credentials: exit %d\n%s", exitCode(err), out)
	}
	psqlScript(t, "engine", "postgres", []string{
		"\\set pw '" + password + "'",
		"create role e2e_other login password :'pw';",
	})
	for i, d := range dbs {
		owner := "engine"
		if i == 2 {
			owner = "e2e_other"
		}
		psqlScript(t, "engine", "postgres", []string{
			"create database " + d + " owner " + owner + " template template0 encoding 'UTF8' lc_collate 'en_US.UTF-8' lc_ctype 'en_US.UTF-8';",
			"alter database " + d + " set lc_messages = 'en_US.UTF-8';",
		})
	}

	// Without --*restore-permissions: FATAL.
	out, err = restore(dbs[0], "engine", "pass", "")
	if exitCode(err) != 1 || !strings.Contains(out, "--no-restore-permissions") {
		t.Errorf("restore without --restore-permissions/--no-restore-permissions: exit %d\n%s", exitCode(err), out)
	}
	// aaa/internal.properties missing: the database and the engine's config
	// are changed, then rc 1 at the very end.
	sshOut(t, "engine", "mv /etc/ovirt-engine/aaa/internal.properties "+dir+"/")
	out, err = restore(dbs[0], "engine", "pass", "--no-restore-permissions")
	if exitCode(err) != 1 || !strings.Contains(out, "internal.properties") {
		t.Errorf("restore with internal.properties missing: exit %d\n%s", exitCode(err), out)
	}
	if got := sshOut(t, "engine", "grep ^ENGINE_DB_DATABASE= /etc/ovirt-engine/engine.conf.d/10-setup-database.conf"); got != `ENGINE_DB_DATABASE="`+dbs[0]+`"` {
		t.Errorf("after the late failure the engine config says %s", got)
	}
	if got := sshOut(t, "engine", "cd / && runuser -u postgres -- psql -X -At -d "+dbs[0]+" -c 'select count(*) from vm_static'"); got != "200" {
		t.Errorf("restored vm_static rows: %s", got)
	}
	sshOut(t, "engine", "mv "+dir+"/internal.properties /etc/ovirt-engine/aaa/")

	// Into an empty database with all files present: rc 0, every config
	// rewritten, and the engine then heartbeats into the new database.
	out = sshOut(t, "engine", "engine-backup --mode=restore --scope=db --file="+archive+" --log="+dir+"/restore2.log"+
		" --change-db-credentials --db-host=localhost --db-user=engine --db-name="+dbs[1]+" --db-passfile="+dir+"/pass --no-restore-permissions")
	if !strings.Contains(out, "Done.") {
		t.Errorf("restore output:\n%s", out)
	}
	wantURL := "jdbc:postgresql://localhost:5432/" + dbs[1] + "?sslfactory=org.postgresql.ssl.NonValidatingFactory"
	for _, f := range []string{"/etc/ovirt-engine/engine.conf.d/10-setup-database.conf", "/etc/ovirt-engine-dwh/ovirt-engine-dwhd.conf.d/10-setup-database.conf"} {
		if got := sshOut(t, "engine", "grep ^ENGINE_DB_URL= "+f); got != `ENGINE_DB_URL="`+wantURL+`"` {
			t.Errorf("%s: %s", f, got)
		}
	}
	if got := sshOut(t, "engine", "grep ^config.datasource.jdbcurl= /etc/ovirt-engine/aaa/internal.properties"); got != "config.datasource.jdbcurl="+wantURL {
		t.Errorf("internal.properties: %s", got)
	}
	// Not empty any more: refused.
	if out, err := restore(dbs[1], "engine", "pass", "--no-restore-permissions"); exitCode(err) != 1 || !strings.Contains(out, "is not empty") {
		t.Errorf("restore into a non-empty database: exit %d\n%s", exitCode(err), out)
	}
	sshOut(t, "engine", "engine-setup --accept-defaults >/dev/null")
	waitHealth(t, "200")
	time.Sleep(500 * time.Millisecond)
	if n := engineHeartbeats(t, "engine", dbs[1]); n == 0 {
		t.Error("no heartbeats in the restored database after engine-setup")
	}
	sshOut(t, "engine", "systemctl stop ovirt-engine")

	// --restore-permissions with another user: must be member of role engine.
	out, err = restore(dbs[2], "e2e_other", "pass", "--restore-permissions")
	if exitCode(err) != 1 || !strings.Contains(out, `must be member of role "engine"`) {
		t.Errorf("--restore-permissions with another user: exit %d\n%s", exitCode(err), out)
	}
}
