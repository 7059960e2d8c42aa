package executors

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/migrun/migrun/executors/sshtest"
	"golang.org/x/crypto/ssh"
)

// sshFixture is a test server plus what a client needs to reach it.
type sshFixture struct {
	srv        *sshtest.Server
	key        ed25519.PrivateKey
	keyFile    string
	knownHosts string
}

func newSSHFixture(t *testing.T, opts sshtest.Options) *sshFixture {
	t.Helper()
	signer, key := sshtest.NewKey(t)
	opts.AuthorizedKeys = append(opts.AuthorizedKeys, signer.PublicKey())
	srv := sshtest.Start(t, opts)
	return &sshFixture{
		srv:        srv,
		key:        key,
		keyFile:    sshtest.WriteIdentity(t, key, nil),
		knownHosts: srv.WriteKnownHosts(t),
	}
}

// config reaches the fixture with its identity file, no ~/.ssh/config and
// no ssh-agent, whatever the machine running the tests has.
func (f *sshFixture) config(t *testing.T) SSHConfig {
	return SSHConfig{
		Name:           "db",
		Address:        f.srv.Addr(),
		IdentityFiles:  []string{f.keyFile},
		KnownHostsFile: f.knownHosts,
		SSHConfigFile:  "none",
		AgentSocket:    filepath.Join(t.TempDir(), "no-agent"),
		ConnectTimeout: 5 * time.Second,
	}
}

func (f *sshFixture) dial(t *testing.T, cfg SSHConfig) *SSH {
	t.Helper()
	s, err := DialSSH(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestSSH(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	testExecutor(t, func(t *testing.T) Executor { return f.dial(t, f.config(t)) })
}

func TestSSHCommandLine(t *testing.T) {
	cmd := Command{
		Argv: []string{"psql", "-c", "select 'x'"},
		Env:  map[string]string{"PGDATABASE": "engine", "A": "1 2"},
		Dir:  "/var/lib/pgsql",
	}
	plain := `cd /var/lib/pgsql && env 'A=1 2' PGDATABASE=engine psql -c 'select '\''x'\'''`
	tests := []struct {
		name   string
		method string
		cmd    Command
		want   string
	}{
		{"argv", "sudo", Command{Argv: []string{"ls", "-l", "a b"}}, `ls -l 'a b'`},
		{"script", "sudo", Command{Script: "echo $HOME"}, `sh -c 'echo $HOME'`},
		{"env dir", "sudo", cmd, plain},
		{"sudo", "sudo", withBecome(cmd, "postgres"), "sudo -n -u postgres -- sh -c " + Quote(plain)},
		{"su", "su", withBecome(cmd, "postgres"), "su - postgres -c " + Quote(plain)},
	}
	for _, tt := range tests {
		s := &SSH{becomeMethod: tt.method}
		if got := s.commandLine(tt.cmd); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

func withBecome(c Command, user string) Command {
	c.Become = user
	return c
}

func TestSSHHostKeys(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	fp := ssh.FingerprintSHA256(f.srv.HostKey())
	otherKey, _ := sshtest.NewKey(t)
	otherLine := "[127.0.0.1]:1 " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherKey.PublicKey())))
	changedLine := strings.Replace(otherLine, "[127.0.0.1]:1", fmt.Sprintf("[127.0.0.1]:%d", f.srv.Port()), 1)

	tests := []struct {
		name      string
		file      *string // known_hosts content; nil = no file
		accept    bool
		wantErr   error
		wantInErr []string
		wantFile  *string // content afterwards; nil = unchanged
	}{
		{name: "known", file: ptr(f.srv.KnownHostsLine() + "\n")},
		{name: "unknown", file: ptr(otherLine + "\n"), wantErr: ErrUnknownHostKey,
			wantInErr: []string{fp, "ssh-ed25519", "--accept-new-host-keys", "127.0.0.1"}},
		{name: "unknown no file", wantErr: ErrUnknownHostKey, wantInErr: []string{fp}},
		{name: "accept new", file: ptr(otherLine), accept: true,
			wantFile: ptr(otherLine + "\n" + f.srv.KnownHostsLine() + "\n")},
		{name: "accept new, no file", accept: true, wantFile: ptr(f.srv.KnownHostsLine() + "\n")},
		{name: "changed", file: ptr(changedLine + "\n"), wantErr: ErrChangedHostKey,
			wantInErr: []string{fp, ssh.FingerprintSHA256(otherKey.PublicKey()), "ssh-keygen -R"}},
		{name: "changed with accept", file: ptr(changedLine + "\n"), accept: true, wantErr: ErrChangedHostKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config(t)
			cfg.KnownHostsFile = filepath.Join(t.TempDir(), "ssh", "known_hosts")
			if tt.file != nil {
				os.MkdirAll(filepath.Dir(cfg.KnownHostsFile), 0o700)
				if err := os.WriteFile(cfg.KnownHostsFile, []byte(*tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			cfg.AcceptNewHostKeys = tt.accept
			s, err := DialSSH(t.Context(), cfg)
			if s != nil {
				defer s.Close()
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			for _, w := range tt.wantInErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q: %v", w, err)
				}
			}
			want := tt.file
			if tt.wantFile != nil {
				want = tt.wantFile
			}
			b, rerr := os.ReadFile(cfg.KnownHostsFile)
			switch {
			case want == nil && rerr == nil:
				t.Errorf("known_hosts was created: %q", b)
			case want != nil && string(b) != *want:
				t.Errorf("known_hosts =\n%q\nwant\n%q", b, *want)
			}
			if tt.wantFile != nil {
				if fi, err := os.Stat(cfg.KnownHostsFile); err != nil || fi.Mode().Perm() != 0o600 {
					t.Errorf("known_hosts mode %v, %v", fi.Mode(), err)
				}
				// Recorded: the next connection needs no acceptance.
				cfg.AcceptNewHostKeys = false
				s2, err := DialSSH(t.Context(), cfg)
				if err != nil {
					t.Fatalf("second dial: %v", err)
				}
				s2.Close()
			}
		})
	}
}

// TestSSHHostKeyChangesUnderUs: the key known from a first connection
// changes (a reinstalled host, or an attacker); the next dial is refused
// even with AcceptNewHostKeys, and the recorded key stays.
func TestSSHHostKeyChangesUnderUs(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	cfg := f.config(t)
	cfg.AcceptNewHostKeys = true
	f.dial(t, cfg).Close()
	before, _ := os.ReadFile(cfg.KnownHostsFile)

	oldFP := ssh.FingerprintSHA256(f.srv.HostKey())
	newKey, _ := sshtest.NewKey(t)
	f.srv.SetHostKey(newKey)
	_, err := DialSSH(t.Context(), cfg)
	if !errors.Is(err, ErrChangedHostKey) {
		t.Fatalf("err = %v, want ErrChangedHostKey", err)
	}
	for _, fp := range []string{oldFP, ssh.FingerprintSHA256(newKey.PublicKey())} {
		if !strings.Contains(err.Error(), fp) {
			t.Errorf("error lacks fingerprint %s: %v", fp, err)
		}
	}
	if after, _ := os.ReadFile(cfg.KnownHostsFile); !bytes.Equal(before, after) {
		t.Errorf("known_hosts changed:\n%s", after)
	}
}

func ptr[T any](v T) *T { return &v }

func TestSSHAuth(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	pass := []byte("correct horse")
	encrypted := sshtest.WriteIdentity(t, f.key, pass)
	_, strangerKey := sshtest.NewKey(t)
	stranger := sshtest.WriteIdentity(t, strangerKey, nil)

	var prompts atomic.Int32
	answers := func(as ...string) func(string) ([]byte, error) {
		return func(file string) ([]byte, error) {
			n := int(prompts.Add(1)) - 1
			if file != encrypted {
				return nil, fmt.Errorf("prompted for %s", file)
			}
			if n >= len(as) {
				return nil, errors.New("no more answers")
			}
			return []byte(as[n]), nil
		}
	}
	tests := []struct {
		name        string
		files       []string
		agentKeys   []any
		prompt      func(string) ([]byte, error)
		wantErr     string // substring; empty = success
		wantPrompts int
	}{
		{name: "identity file", files: []string{f.keyFile}},
		{name: "wrong identity file", files: []string{stranger}, wantErr: "unable to authenticate"},
		{name: "agent", agentKeys: []any{strangerKey, f.key}},
		{name: "identity file before agent", files: []string{stranger}, agentKeys: []any{f.key}},
		{name: "agent without the key", agentKeys: []any{strangerKey}, wantErr: "unable to authenticate"},
		{name: "missing identity file", files: []string{"/nonexistent/id"}, wantErr: "no such file"},
		{name: "encrypted, no prompt", files: []string{encrypted}, wantErr: "ssh-add"},
		{name: "encrypted, prompt", files: []string{encrypted}, prompt: answers(string(pass)), wantPrompts: 1},
		{name: "encrypted, wrong then right", files: []string{encrypted}, prompt: answers("nope", string(pass)), wantPrompts: 2},
		{name: "encrypted, always wrong", files: []string{encrypted}, prompt: answers("a", "b", "c", "d"), wantErr: "wrong passphrase", wantPrompts: 3},
		{name: "encrypted, key in agent", files: []string{encrypted}, agentKeys: []any{f.key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prompts.Store(0)
			cfg := f.config(t)
			cfg.IdentityFiles = tt.files
			cfg.PassphrasePrompt = tt.prompt
			if len(tt.agentKeys) > 0 {
				cfg.AgentSocket = sshtest.StartAgent(t, tt.agentKeys...)
			}
			s, err := DialSSH(t.Context(), cfg)
			if err == nil {
				defer s.Close()
				if _, err := s.Run(t.Context(), Command{Argv: []string{"true"}}); err != nil {
					t.Fatal(err)
				}
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantErr)
			}
			if got := int(prompts.Load()); got != tt.wantPrompts {
				t.Errorf("prompted %d times, want %d", got, tt.wantPrompts)
			}
		})
	}
}

func TestSSHBecome(t *testing.T) {
	bin := fakeBecomeBin(t)
	f := newSSHFixture(t, sshtest.Options{Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}})
	dir := t.TempDir()
	cmd := Command{Script: `printf %s-%s "$A" "$PWD"`, Env: map[string]string{"A": "x y"}, Dir: dir, Become: "postgres"}
	line := "cd " + dir + " && env 'A=x y' sh -c 'printf %s-%s \"$A\" \"$PWD\"'"
	for _, tt := range []struct {
		method string
		want   []string
	}{
		{"sudo", []string{"sudo", "-n", "-u", "postgres", "--", "sh", "-c", line}},
		{"su", []string{"su", "-", "postgres", "-c", line}},
	} {
		os.Remove(filepath.Join(bin, "log"))
		cfg := f.config(t)
		cfg.BecomeMethod = tt.method
		s := f.dial(t, cfg)
		res, err := s.Run(t.Context(), cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.method, err)
		}
		if got := string(res.Stdout); got != "x y-"+dir {
			t.Errorf("%s: output %q", tt.method, got)
		}
		if got := readFakeLog(t, bin); !slices.Equal(got, tt.want) {
			t.Errorf("%s: ran\n %q\nwant\n %q", tt.method, got, tt.want)
		}
	}

	cfg := f.config(t)
	cfg.BecomeMethod = "pbrun"
	if _, err := DialSSH(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "pbrun") {
		t.Errorf("unknown become method: %v", err)
	}
}

func TestSSHRequireTTYHint(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'sudo: sorry, you must have a tty to run sudo' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	f := newSSHFixture(t, sshtest.Options{Env: []string{"PATH=" + bin + ":" + os.Getenv("PATH")}})
	s := f.dial(t, f.config(t))
	_, err := s.Run(t.Context(), Command{Argv: []string{"id"}, Become: "root"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 1 || !strings.Contains(err.Error(), "requiretty") {
		t.Errorf("err = %v", err)
	}
}

func TestSSHOneConnection(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	ctx := t.Context()
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	// More concurrent commands than sshd's MaxSessions must queue, not fail.
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Run(ctx, Command{Argv: []string{"echo", fmt.Sprint(i)}})
			if err == nil && strings.TrimSpace(string(res.Stdout)) != fmt.Sprint(i) {
				err = fmt.Errorf("run %d printed %q", i, res.Stdout)
			}
			errs <- err
			p := filepath.Join(dir, fmt.Sprint(i))
			errs <- s.WriteFile(ctx, p, []byte("x"), FileAttrs{Mode: 0o644})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := f.srv.Handshakes(); n != 1 {
		t.Errorf("%d SSH handshakes, want 1 shared connection", n)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.Run(ctx, Command{Argv: []string{"true"}}); err == nil {
		t.Error("Run after Close succeeded")
	}
}

// cutReader serves data and calls cut once, after the first n bytes.
type cutReader struct {
	r   io.Reader
	n   int64
	cut func()
}

func (c *cutReader) Read(p []byte) (int, error) {
	if c.n <= 0 && c.cut != nil {
		c.cut()
		c.cut = nil
		time.Sleep(50 * time.Millisecond) // let the client see the close
	}
	if c.cut != nil && int64(len(p)) > c.n {
		p = p[:c.n]
	}
	k, err := c.r.Read(p)
	c.n -= int64(k)
	return k, err
}

func TestSSHResumeAfterCut(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	data := make([]byte, 4<<20)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	p := filepath.Join(t.TempDir(), "dump.part")

	s := f.dial(t, f.config(t))
	w, err := s.OpenWriter(t.Context(), p, 0)
	if err != nil {
		t.Fatal(err)
	}
	cut := func() {
		// Cut once the server has written some of the data, as a
		// network failure in the middle of a transfer would.
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if fi, err := os.Stat(p); err == nil && fi.Size() >= 512<<10 {
				break
			}
		}
		f.srv.CloseConnections()
	}
	_, err = io.Copy(w, &cutReader{r: bytes.NewReader(data), n: 1 << 20, cut: cut})
	w.Close()
	if err == nil {
		t.Fatal("copy survived the cut connection")
	}
	if _, err := s.Run(t.Context(), Command{Argv: []string{"true"}}); err == nil {
		t.Error("Run on the cut connection succeeded")
	}
	s.Close()

	// Resume as the copy step does: reconnect, step back from the size of
	// the partial file, reopen there (which truncates any holes away).
	s = f.dial(t, f.config(t))
	fi, err := s.Stat(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size == 0 || fi.Size >= int64(len(data)) {
		t.Fatalf("partial file has %d bytes", fi.Size)
	}
	offset := max(0, min(fi.Size, 1<<20)-256<<10)
	w, err = s.OpenWriter(t.Context(), p, offset)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := io.Copy(w, bytes.NewReader(data[offset:])); err != nil || n != int64(len(data))-offset {
		t.Fatalf("resumed copy: %d bytes, %v", n, err)
	}
	if err := w.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	got, err := s.Checksum(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	if got != hex.EncodeToString(sum[:]) {
		t.Error("resumed file differs from the source")
	}
}

func TestSSHConnectionLostMidCommand(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	time.AfterFunc(300*time.Millisecond, f.srv.CloseConnections)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // fail, don't hang
	defer cancel()
	start := time.Now()
	_, err := s.Run(ctx, Command{Argv: []string{"sleep", "30"}})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("err = %v, want ErrOutcomeUnknown", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v", d)
	}
}

func TestSSHKeepaliveClosesDeadConnection(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	cfg := f.config(t)
	cfg.KeepaliveInterval = 100 * time.Millisecond
	s := f.dial(t, cfg)
	time.Sleep(350 * time.Millisecond)
	if f.srv.Keepalives() == 0 {
		t.Error("no keepalive reached the server")
	}
	time.AfterFunc(200*time.Millisecond, f.srv.Freeze)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // fail, don't hang
	defer cancel()
	start := time.Now()
	_, err := s.Run(ctx, Command{Argv: []string{"sleep", "30"}})
	if !errors.Is(err, ErrOutcomeUnknown) {
		t.Errorf("err = %v, want ErrOutcomeUnknown", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("dead connection noticed after %v", d)
	}
}

func TestSSHHandshakeTimeout(t *testing.T) {
	addr := sshtest.StallingListener(t)
	f := newSSHFixture(t, sshtest.Options{})
	cfg := f.config(t)
	cfg.Address = addr
	cfg.ConnectTimeout = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second) // fail, don't hang
	defer cancel()
	start := time.Now()
	_, err := DialSSH(ctx, cfg)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %v", d)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	cfg.ConnectTimeout = time.Minute
	start = time.Now()
	if _, err := DialSSH(ctx, cfg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("cancelled dial: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("cancelled dial returned after %v", d)
	}
}

func TestSSHConfigFile(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{User: "migrun-test"})
	conf := filepath.Join(t.TempDir(), "config")
	writeConf := func(extra string) {
		body := fmt.Sprintf("Host mydb\n  HostName 127.0.0.1\n  Port %d\n  User migrun-test\n  IdentityFile %s\n%s",
			f.srv.Port(), f.keyFile, extra)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeConf("")
	cfg := SSHConfig{
		Name:           "db",
		Address:        "mydb",
		KnownHostsFile: f.knownHosts,
		SSHConfigFile:  conf,
		AgentSocket:    filepath.Join(t.TempDir(), "no-agent"),
	}
	s := f.dial(t, cfg)
	if _, err := s.Run(t.Context(), Command{Argv: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.srv.Users(); !slices.Equal(got, []string{"migrun-test"}) {
		t.Errorf("logged in as %q", got)
	}

	// The plan's fields win over ssh_config.
	cfg.User = "someone-else"
	if _, err := DialSSH(t.Context(), cfg); err == nil {
		t.Error("plan user did not override ssh_config's")
	}
	cfg.User = ""

	// Match host tests the HostName set above it, as OpenSSH does: the
	// block for 127.0.0.1 applies to the alias mydb.
	writeConf("Match host 127.0.0.1\n  User nobody-by-match\n")
	body, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte(strings.Replace(string(body), "  User migrun-test\n", "", 1)), 0o600)
	if _, err := DialSSH(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "nobody-by-match") {
		t.Errorf("Match host against HostName not applied: %v", err)
	}

	// A keyword ssh does not know is refused with the file and line.
	writeConf("  NoSuchKeyword yes\n")
	if _, err := DialSSH(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), conf+" line 6") {
		t.Errorf("unknown keyword: %v", err)
	}
}

// jumpSetup starts a jump server accepting jumpKey and returns the
// target's config going through it, both host keys known.
func jumpSetup(t *testing.T, target *sshFixture, jumpKey ssh.PublicKey) (*sshtest.Server, SSHConfig, string) {
	jump := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{jumpKey}})
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(kh, []byte(target.srv.KnownHostsLine()+"\n"+jump.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	u, _ := user.Current()
	cfg := target.config(t)
	cfg.KnownHostsFile = kh
	cfg.Jump = u.Username + "@" + jump.Addr()
	return jump, cfg, kh
}

func TestSSHProxyJump(t *testing.T) {
	target := newSSHFixture(t, sshtest.Options{})
	jump, cfg, kh := jumpSetup(t, target, mustSigner(t, target.key).PublicKey())
	s := target.dial(t, cfg)
	res, err := s.Run(t.Context(), Command{Argv: []string{"echo", "through"}})
	if err != nil || string(res.Stdout) != "through\n" {
		t.Fatalf("Run through jump host: %q, %v", res.Stdout, err)
	}
	if jump.Handshakes() != 1 || target.srv.Handshakes() != 1 {
		t.Errorf("handshakes: jump %d, target %d", jump.Handshakes(), target.srv.Handshakes())
	}

	// The jump host's key is checked like any other.
	os.WriteFile(kh, []byte(target.srv.KnownHostsLine()+"\n"), 0o600)
	if _, err := DialSSH(t.Context(), cfg); !errors.Is(err, ErrUnknownHostKey) || !strings.Contains(err.Error(), "jump host") {
		t.Errorf("unknown jump host key: %v", err)
	}
}

func mustSigner(t *testing.T, key ed25519.PrivateKey) ssh.Signer {
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSSHChecksumWithoutSha256sum(t *testing.T) {
	// An empty PATH on the host: sha256sum is not found (exit 127) and the
	// checksum is computed by streaming the file through SFTP.
	f := newSSHFixture(t, sshtest.Options{Env: []string{"PATH=/nonexistent"}})
	s := f.dial(t, f.config(t))
	p := filepath.Join(t.TempDir(), "f")
	data := bytes.Repeat([]byte("abc"), 50000)
	os.WriteFile(p, data, 0o644)
	got, err := s.Checksum(t.Context(), p)
	sum := sha256.Sum256(data)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Errorf("Checksum = %s, %v", got, err)
	}
}

// TestSSHCancelOnSilentConnection: a peer that stops answering never
// confirms the kill; a cancelled Run must return anyway.
func TestSSHCancelOnSilentConnection(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	cfg := f.config(t)
	cfg.KeepaliveInterval = time.Hour
	s := f.dial(t, cfg)
	if _, err := s.Stat(t.Context(), "/"); err != nil { // opens the SFTP client
		t.Fatal(err)
	}
	f.srv.Freeze()
	for _, cmd := range []Command{{Argv: []string{"true"}}, {Argv: []string{"sleep", "30"}}} {
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		start := time.Now()
		_, err := s.Run(ctx, cmd)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > killGrace+time.Second {
			t.Errorf("cancelled Run returned after %v", d)
		}
	}
	start := time.Now()
	s.Close()
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close on a silent connection took %v", d)
	}
}

// A jump host that is another host of the plan is reached with its own
// key, which the target does not accept, and the target with its key.
func TestSSHJumpOwnIdentity(t *testing.T) {
	target := newSSHFixture(t, sshtest.Options{})
	jumpSigner, jumpKey := sshtest.NewKey(t)
	_, cfg, _ := jumpSetup(t, target, jumpSigner.PublicKey())
	if _, err := DialSSH(t.Context(), cfg); err == nil || !strings.Contains(err.Error(), "jump host") {
		t.Fatalf("jump host accepted the target's key: %v", err)
	}
	cfg.JumpIdentityFiles = map[string][]string{cfg.Jump: {sshtest.WriteIdentity(t, jumpKey, nil)}}
	s := target.dial(t, cfg)
	if res, err := s.Run(t.Context(), Command{Argv: []string{"echo", "ok"}}); err != nil || string(res.Stdout) != "ok\n" {
		t.Fatalf("Run through jump host with its own key: %q, %v", res.Stdout, err)
	}
}
