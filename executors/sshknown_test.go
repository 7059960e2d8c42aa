package executors

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors/sshtest"
	"golang.org/x/crypto/ssh"
)

// TestMain lets the test binary act as a ProxyCommand: with
// MIGRUN_TEST_PROXY_TO set it copies stdin and stdout to that address,
// as `nc` would.
func TestMain(m *testing.M) {
	if addr := os.Getenv("MIGRUN_TEST_PROXY_TO"); addr != "" {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "proxy:", err)
			os.Exit(1)
		}
		go func() { io.Copy(c, os.Stdin); c.(*net.TCPConn).CloseWrite() }()
		io.Copy(os.Stdout, c)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writeSSHConfig writes an ssh_config for the fixture under the alias
// "target" with extra lines in its block.
func writeSSHConfig(t *testing.T, f *sshFixture, extra string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "ssh_config")
	body := fmt.Sprintf("Host target\n  HostName 127.0.0.1\n  Port %d\n  IdentityFile %s\n%s", f.srv.Port(), f.keyFile, extra)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

func configFor(t *testing.T, conf string) SSHConfig {
	return SSHConfig{Name: "db", Address: "target", SSHConfigFile: conf,
		AgentSocket: filepath.Join(t.TempDir(), "no-agent")}
}

func TestSSHProxyCommand(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	conf := writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s\n  ProxyCommand env MIGRUN_TEST_PROXY_TO=%%h:%%p %s\n", f.knownHosts, Quote(os.Args[0])))
	s, err := DialSSH(t.Context(), configFor(t, conf))
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(t.Context(), Command{Argv: []string{"echo", "proxied"}})
	if err != nil || string(res.Stdout) != "proxied\n" {
		t.Fatalf("Run through ProxyCommand: %q, %v", res.Stdout, err)
	}
	if s.Endpoint().Direct != true {
		t.Error("a ProxyCommand connection is one hop")
	}
	s.Close()

	// A ProxyCommand that fails says which command failed.
	conf = writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s\n  ProxyCommand exit 3\n", f.knownHosts))
	if _, err := DialSSH(t.Context(), configFor(t, conf)); err == nil || !strings.Contains(err.Error(), `ProxyCommand "exec exit 3"`) {
		t.Errorf("failing ProxyCommand: %v", err)
	}
}

func TestSSHKnownHostsFromConfig(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)

	// The key is in the second user file, or in a global file.
	conf := writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s %s\n  GlobalKnownHostsFile none\n", empty, f.knownHosts))
	if s, err := DialSSH(t.Context(), configFor(t, conf)); err != nil {
		t.Errorf("key in the second UserKnownHostsFile: %v", err)
	} else {
		s.Close()
	}
	conf = writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s\n  GlobalKnownHostsFile %s\n", empty, f.knownHosts))
	if s, err := DialSSH(t.Context(), configFor(t, conf)); err != nil {
		t.Errorf("key in GlobalKnownHostsFile: %v", err)
	} else {
		s.Close()
	}

	// Unknown everywhere: refused, naming the first user file.
	fresh := filepath.Join(dir, "fresh", "known_hosts")
	conf = writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s %s\n  GlobalKnownHostsFile none\n", fresh, empty))
	if _, err := DialSSH(t.Context(), configFor(t, conf)); !errors.Is(err, ErrUnknownHostKey) || !strings.Contains(err.Error(), fresh) {
		t.Errorf("unknown key: %v", err)
	}

	// StrictHostKeyChecking accept-new with HashKnownHosts: recorded in
	// the first user file, hashed, and found again on the next dial.
	conf = writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s %s\n  GlobalKnownHostsFile none\n  StrictHostKeyChecking accept-new\n  HashKnownHosts yes\n", fresh, empty))
	s, err := DialSSH(t.Context(), configFor(t, conf))
	if err != nil {
		t.Fatalf("accept-new from ssh_config: %v", err)
	}
	s.Close()
	b, _ := os.ReadFile(fresh)
	if !strings.HasPrefix(string(b), "|1|") || strings.Contains(string(b), "127.0.0.1") {
		t.Errorf("recorded line not hashed: %q", b)
	}
	conf = writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n", fresh))
	if s, err := DialSSH(t.Context(), configFor(t, conf)); err != nil {
		t.Errorf("hashed line not matched: %v", err)
	} else {
		s.Close()
	}
}

func TestSSHCertAuthority(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	ca, _ := sshtest.NewKey(t)
	otherCA, _ := sshtest.NewKey(t)
	hostKey, _ := sshtest.NewKey(t)
	certSigner := func(signer ssh.Signer, principal string) ssh.Signer {
		cert := &ssh.Certificate{Key: hostKey.PublicKey(), CertType: ssh.HostCert,
			ValidPrincipals: []string{principal}, ValidBefore: ssh.CertTimeInfinity}
		if err := cert.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		s, err := ssh.NewCertSigner(cert, hostKey)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := fmt.Sprintf("@cert-authority [127.0.0.1]:%d %s", f.srv.Port(), strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca.PublicKey()))))
	os.WriteFile(kh, []byte(line+"\n"), 0o600)
	conf := writeSSHConfig(t, f, fmt.Sprintf("  UserKnownHostsFile %s\n  GlobalKnownHostsFile none\n", kh))

	tests := []struct {
		name    string
		key     ssh.Signer
		wantErr error
		inErr   string
	}{
		{name: "certificate from the authority", key: certSigner(ca, "127.0.0.1")},
		{name: "certificate from another authority", key: certSigner(otherCA, "127.0.0.1"), wantErr: errAny},
		{name: "certificate for another name", key: certSigner(ca, "elsewhere.example"), wantErr: errAny},
		{name: "plain key", key: hostKey, wantErr: ErrUnknownHostKey, inErr: "certificate authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.srv.SetHostKey(tt.key)
			s, err := DialSSH(t.Context(), configFor(t, conf))
			if s != nil {
				s.Close()
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("dial: %v", err)
			case tt.wantErr == errAny && err == nil:
				t.Fatal("dial succeeded")
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			case errors.Is(err, ErrChangedHostKey):
				t.Fatalf("reported as a changed key: %v", err)
			}
			if tt.inErr != "" && !strings.Contains(err.Error(), tt.inErr) {
				t.Errorf("error lacks %q: %v", tt.inErr, err)
			}
		})
	}
	if b, _ := os.ReadFile(kh); string(b) != line+"\n" {
		t.Errorf("known_hosts changed: %q", b)
	}
}

// errAny stands for "some error" in a table.
var errAny = errors.New("any error")
