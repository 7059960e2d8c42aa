package executors

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kevinburke/ssh_config"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// dialer holds what DialSSH needs for every hop of one connection chain.
type dialer struct {
	cfg       SSHConfig
	sshConfig *ssh_config.Config
	localUser string
	home      string
	timeout   time.Duration
	hostKeys  *hostKeyStore
}

func newDialer(cfg SSHConfig) (*dialer, error) {
	d := &dialer{cfg: cfg, timeout: cfg.ConnectTimeout}
	if d.timeout <= 0 {
		d.timeout = defaultConnectTimeout
	}
	d.localUser, d.home = currentUser()
	sc, err := loadSSHConfig(cfg.SSHConfigFile)
	if err != nil {
		return nil, err
	}
	d.sshConfig = sc
	khFile := cfg.KnownHostsFile
	if khFile == "" {
		if d.home == "" {
			return nil, errors.New("no home directory for ~/.ssh/known_hosts: set the known hosts file")
		}
		khFile = filepath.Join(d.home, ".ssh", "known_hosts")
	}
	d.hostKeys = &hostKeyStore{file: khFile, acceptNew: cfg.AcceptNewHostKeys}
	return d, nil
}

// dialHop connects to h, directly or through via, and authenticates.
func (d *dialer) dialHop(ctx context.Context, h sshHop, via *ssh.Client) (*ssh.Client, ssh.PublicKey, error) {
	addr := h.addr()
	callback, algos, err := d.hostKeys.callback(addr)
	if err != nil {
		return nil, nil, err
	}
	auth, err := d.auth(h)
	if err != nil {
		return nil, nil, err
	}
	defer auth.close()

	var nc net.Conn
	if via == nil {
		nd := net.Dialer{Timeout: d.timeout}
		nc, err = nd.DialContext(ctx, "tcp", addr)
	} else {
		dctx, cancel := context.WithTimeout(ctx, d.timeout)
		nc, err = via.DialContext(dctx, "tcp", addr)
		cancel()
	}
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}

	// Host key refusals are returned as they are, without the library's
	// "ssh: handshake failed:" prefix: they are complete messages.
	var (
		hostKeyErr error
		hostKey    ssh.PublicKey
	)
	config := &ssh.ClientConfig{
		User: h.user,
		Auth: []ssh.AuthMethod{ssh.PublicKeysCallback(auth.signers)},
		HostKeyCallback: func(hostname string, remote net.Addr, key ssh.PublicKey) error {
			hostKeyErr = callback(hostname, remote, key)
			if hostKeyErr == nil {
				hostKey = key
			}
			return hostKeyErr
		},
		HostKeyAlgorithms: algos,
		Timeout:           d.timeout,
	}
	// ClientConfig.Timeout covers only net.Dial: a server that accepts and
	// then says nothing would hang NewClientConn forever. Set a deadline on
	// the conn for the handshake, and close the conn if ctx ends or, for a
	// tunnelled conn that has no deadlines, when the time is up.
	deadline := time.Now().Add(d.timeout)
	_ = nc.SetDeadline(deadline)
	hctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stop := context.AfterFunc(hctx, func() { nc.Close() })
	conn, chans, reqs, err := ssh.NewClientConn(nc, addr, config)
	interrupted := !stop()
	if err == nil && interrupted {
		conn.Close()
		err = errors.New("interrupted")
	}
	if err != nil {
		nc.Close()
		if ctx.Err() != nil {
			return nil, nil, fmt.Errorf("ssh handshake with %s: %w", addr, ctx.Err())
		}
		if interrupted || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil, fmt.Errorf("ssh handshake with %s did not finish within %s (is an SSH server listening there?): %w",
				addr, d.timeout, context.DeadlineExceeded)
		}
		if hostKeyErr != nil {
			return nil, nil, hostKeyErr
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			err = fmt.Errorf("%w (user %s; %s)", err, h.user, auth.describe())
		}
		return nil, nil, fmt.Errorf("ssh to %s: %w", addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return ssh.NewClient(conn, chans, reqs), hostKey, nil
}

// authKeys is the list of keys offered for one hop, in order.
type authKeys struct {
	list    []ssh.Signer
	offered []string // for messages: where each key came from
	skipped []string // identity files not used, and why
	agent   net.Conn
}

func (a *authKeys) signers() ([]ssh.Signer, error) { return a.list, nil }

func (a *authKeys) close() {
	if a.agent != nil {
		a.agent.Close()
	}
}

func (a *authKeys) describe() string {
	s := "offered: none"
	if len(a.offered) > 0 {
		s = "offered: " + strings.Join(a.offered, ", ")
	}
	if len(a.skipped) > 0 {
		s += "; skipped: " + strings.Join(a.skipped, ", ")
	}
	return s
}

func (a *authKeys) add(s ssh.Signer, from string) {
	fp := string(s.PublicKey().Marshal())
	for _, have := range a.list {
		if string(have.PublicKey().Marshal()) == fp {
			return
		}
	}
	a.list = append(a.list, s)
	a.offered = append(a.offered, from+" "+ssh.FingerprintSHA256(s.PublicKey()))
}

// auth collects the keys for h: its identity files first, then the agent's
// keys. The agent connection stays open until the handshake has signed.
func (d *dialer) auth(h sshHop) (*authKeys, error) {
	a := &authKeys{}
	var agentKeys []ssh.Signer
	sock := d.cfg.AgentSocket
	if sock == "" {
		sock = os.Getenv("SSH_AUTH_SOCK")
	}
	if sock != "" {
		if c, err := net.Dial("unix", sock); err == nil {
			a.agent = c
			if keys, err := agent.NewClient(c).Signers(); err == nil {
				agentKeys = keys
			} else {
				a.skipped = append(a.skipped, "ssh-agent: "+err.Error())
			}
		} else {
			a.skipped = append(a.skipped, "ssh-agent: "+err.Error())
		}
	}
	for _, f := range h.identityFiles {
		s, err := d.loadIdentity(f, agentKeys)
		if err != nil {
			if f.explicit {
				a.close()
				return nil, err
			}
			a.skipped = append(a.skipped, err.Error())
			continue
		}
		if s != nil {
			a.add(s, f.path)
		}
	}
	for _, s := range agentKeys {
		a.add(s, "agent")
	}
	return a, nil
}

// loadIdentity reads a private key. A missing default file is (nil, nil).
// For an encrypted key it uses the agent's copy if the agent holds the same
// public key (as OpenSSH does), else asks PassphrasePrompt.
func (d *dialer) loadIdentity(f identityFile, agentKeys []ssh.Signer) (ssh.Signer, error) {
	data, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) && !f.explicit {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	s, err := ssh.ParsePrivateKey(data)
	var pm *ssh.PassphraseMissingError
	if !errors.As(err, &pm) {
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", f.path, err)
		}
		return s, nil
	}
	pub := pm.PublicKey
	if pub == nil {
		if b, err := os.ReadFile(f.path + ".pub"); err == nil {
			pub, _, _, _, _ = ssh.ParseAuthorizedKey(b)
		}
	}
	if pub != nil {
		for _, ak := range agentKeys {
			if string(ak.PublicKey().Marshal()) == string(pub.Marshal()) {
				return ak, nil
			}
		}
	}
	if d.cfg.PassphrasePrompt == nil {
		return nil, fmt.Errorf("identity file %s is encrypted and there is no terminal to ask for its passphrase: add it to ssh-agent (ssh-add %s) or run interactively", f.path, f.path)
	}
	for range 3 {
		pass, err := d.cfg.PassphrasePrompt(f.path)
		if err != nil {
			return nil, fmt.Errorf("identity file %s: passphrase: %w", f.path, err)
		}
		s, err = ssh.ParsePrivateKeyWithPassphrase(data, pass)
		clear(pass)
		if errors.Is(err, x509.IncorrectPasswordError) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("identity file %s: %w", f.path, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("identity file %s: wrong passphrase, 3 tries", f.path)
}

// keepalive probes client every interval with keepalive@openssh.com and
// closes it once maxFail probes in a row went unanswered, which fails every
// pending call instead of letting it hang on a dead peer. Any reply, even
// a refusal, proves the peer alive. It returns when stop closes.
func keepalive(client *ssh.Client, interval time.Duration, maxFail int, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(interval)
	defer t.Stop()
	reply := make(chan error, 1)
	outstanding, fails := false, 0
	for {
		select {
		case <-stop:
			return
		case err := <-reply:
			outstanding = false
			if err != nil {
				fails++
			} else {
				fails = 0
			}
			continue
		case <-t.C:
		}
		if outstanding {
			fails++ // the previous probe got no answer within an interval
		}
		if fails >= maxFail {
			client.Close()
			return
		}
		if !outstanding {
			outstanding = true
			go func() {
				_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}()
		}
	}
}

// hostKeyStore checks host keys against a known_hosts file and, when
// allowed, records new ones.
type hostKeyStore struct {
	file      string
	acceptNew bool
	mu        sync.Mutex // serialises appends from this process
}

// callback returns the host key callback for hostport and the key
// algorithms to ask for. Restricting the algorithms to the types known for
// the host matters: otherwise the server may offer a type not in the file
// and a known host looks like a changed key.
func (s *hostKeyStore) callback(hostport string) (ssh.HostKeyCallback, []string, error) {
	db, err := loadKnownHosts(s.file)
	if err != nil {
		return nil, nil, err
	}
	inner := db.HostKeyCallback()
	cb := func(hostname string, remote net.Addr, key ssh.PublicKey) error {
		err := inner(hostname, remote, key)
		switch {
		case err == nil:
			return nil
		case isHostKeyChanged(err):
			return changedKeyError(hostname, key, err, s.file)
		case isHostUnknown(err):
			if !s.acceptNew {
				return fmt.Errorf("%w: %s presented %s key %s; if that is the host's key, rerun with --accept-new-host-keys or add it to %s",
					ErrUnknownHostKey, hostname, key.Type(), ssh.FingerprintSHA256(key), s.file)
			}
			if err := s.append(hostname, remote, key); err != nil {
				return fmt.Errorf("record new host key of %s: %w", hostname, err)
			}
			return nil
		default:
			return fmt.Errorf("known hosts %s: %w", s.file, err)
		}
	}
	return cb, db.HostKeyAlgorithms(hostport), nil
}
