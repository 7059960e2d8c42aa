package executors

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"strings"
	"time"

	"github.com/migrun/migrun/executors/sshconfig"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
)

// dialer holds what DialSSH needs for every hop of one connection chain.
type dialer struct {
	cfg     SSHConfig
	env     sshconfig.Env
	sources []sshconfig.Source
	timeout time.Duration
}

func newDialer(cfg SSHConfig) (*dialer, error) {
	d := &dialer{cfg: cfg, timeout: cfg.ConnectTimeout}
	if d.timeout <= 0 {
		d.timeout = defaultConnectTimeout
	}
	env, err := sshconfig.CurrentEnv()
	if err != nil {
		return nil, err
	}
	d.env = env
	d.sources = sshconfig.Sources(cfg.SSHConfigFile, env)
	return d, nil
}

// dialHop connects to h, directly or through via, and authenticates.
func (d *dialer) dialHop(ctx context.Context, h sshHop, via *ssh.Client) (*ssh.Client, ssh.PublicKey, error) {
	addr := h.addr()
	callback, algos, err := h.hostKeys.callback(h.keyName)
	if err != nil {
		return nil, nil, err
	}
	auth, err := d.auth(h)
	if err != nil {
		return nil, nil, err
	}
	defer auth.close()

	var nc net.Conn
	switch {
	case via == nil && h.proxyCommand != "":
		nc, err = dialProxyCommand(h.proxyCommand)
	case via == nil:
		nd := net.Dialer{Timeout: d.timeout}
		nc, err = nd.DialContext(ctx, "tcp", addr)
		if err == nil {
			nc = quickAck(nc)
		}
	default:
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
		HostKeyCallback: func(_ string, remote net.Addr, key ssh.PublicKey) error {
			hostKeyErr = callback(h.keyName, remote, key)
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
		if via == nil && h.proxyCommand != "" {
			return nil, nil, fmt.Errorf("ssh to %s through ProxyCommand %q: %w", addr, h.proxyCommand, err)
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
