package executors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// SSHConfig says how to reach one host over SSH. Its fields act as ssh's
// command line: they win over ssh_config, which fills the rest as ssh does
// (package sshconfig: HostName, User, Port, IdentityFile, ProxyJump,
// ProxyCommand, the known_hosts settings), then ssh's defaults.
type SSHConfig struct {
	// Name is the plan's name for the host, used in every message.
	Name string
	// Address is a host name, an IP address or an ~/.ssh/config alias,
	// optionally with ":port".
	Address string
	User    string
	Port    int
	// IdentityFiles are private keys offered before any ssh-agent key, so
	// that an agent with many keys does not exhaust the server's
	// MaxAuthTries first (OpenSSH's IdentitiesOnly, minus the "only").
	IdentityFiles []string
	// Jump is a ProxyJump spec: "[user@]host[:port]", comma-separated for
	// a chain; "none" disables a ProxyJump from ~/.ssh/config.
	Jump string
	// JumpIdentityFiles are identity files for hops of Jump, keyed by the
	// hop as written there ("ops@bastion:2222"): a jump host that is
	// another host of the plan is reached with its own key first.
	JumpIdentityFiles map[string][]string
	// BecomeMethod is "sudo" (the default) or "su".
	BecomeMethod string
	// KnownHostsFile replaces ssh_config's UserKnownHostsFile (default
	// ~/.ssh/known_hosts and ~/.ssh/known_hosts2); the global files stay.
	KnownHostsFile string
	// AcceptNewHostKeys trusts and records the key of a host that is not
	// in KnownHostsFile yet. A changed key is refused regardless.
	AcceptNewHostKeys bool
	// SSHConfigFile is the one ssh_config file to read, as ssh -F; empty
	// reads ~/.ssh/config and /etc/ssh/ssh_config; "none" reads none.
	SSHConfigFile string
	// ConnectTimeout bounds the TCP connect and, separately, the SSH
	// handshake of each hop. Default 15s.
	ConnectTimeout time.Duration
	// KeepaliveInterval is how often the connection is probed; after 3
	// probes go unanswered the connection is closed, so a command on a
	// dead host fails instead of hanging. Default 15s.
	KeepaliveInterval time.Duration
	// PassphrasePrompt asks for the passphrase of an encrypted identity
	// file. Nil means there is nobody to ask.
	PassphrasePrompt func(keyFile string) ([]byte, error)
	// AgentSocket is the ssh-agent socket; default $SSH_AUTH_SOCK.
	AgentSocket string
}

const (
	defaultConnectTimeout    = 15 * time.Second
	defaultKeepaliveInterval = 15 * time.Second
	keepaliveMaxFailures     = 3
	// maxSessions stays under sshd's default MaxSessions (10), leaving
	// room for the SFTP channel and the command shell (sshshell.go): more
	// concurrent Runs wait for a slot instead of failing with "open failed".
	maxSessions = 7
)

// SSH is a host reached over one SSH connection, shared by every call:
// each Run opens a session channel on it, and file operations share one
// SFTP client opened on first use.
type SSH struct {
	name         string
	endpoint     SSHEndpoint
	becomeMethod string
	client       *ssh.Client
	jumps        []*ssh.Client // hops to close after client, innermost last
	sessions     chan struct{}
	stopKeep     chan struct{}
	keepDone     chan struct{}

	sftpMu sync.Mutex
	sftp   *sftp.Client

	idMu sync.Mutex
	ids  map[string]int // "u:NAME" / "g:NAME" -> id, resolved on the host

	shellState // commands without stdin run here (sshshell.go)

	closeOnce sync.Once
	closeErr  error
}

var _ Executor = (*SSH)(nil)

// DialSSH connects to the host cfg describes, through its jump hosts if
// any, verifying every host key against known_hosts.
func DialSSH(ctx context.Context, cfg SSHConfig) (*SSH, error) {
	if cfg.Name == "" {
		cfg.Name = cfg.Address
	}
	method, err := checkBecomeMethod(cfg.BecomeMethod)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	d, err := newDialer(cfg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	hops, err := d.chain(cfg, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", cfg.Name, err)
	}
	var (
		clients  []*ssh.Client
		endpoint SSHEndpoint
	)
	for i, h := range hops {
		var via *ssh.Client
		if i > 0 {
			via = clients[i-1]
		}
		c, key, err := d.dialHop(ctx, h, via)
		if err != nil {
			for j := len(clients) - 1; j >= 0; j-- {
				clients[j].Close()
			}
			if i < len(hops)-1 {
				err = fmt.Errorf("jump host %s: %w", h.alias, err)
			}
			return nil, fmt.Errorf("%s: %w", cfg.Name, err)
		}
		clients = append(clients, c)
		last := hops[len(hops)-1]
		endpoint = SSHEndpoint{User: last.user, Host: last.host, Port: last.port, HostKey: key, Direct: len(hops) == 1}
	}
	s := &SSH{
		endpoint:     endpoint,
		name:         cfg.Name,
		becomeMethod: method,
		client:       clients[len(clients)-1],
		jumps:        clients[:len(clients)-1],
		sessions:     make(chan struct{}, maxSessions),
		stopKeep:     make(chan struct{}),
		keepDone:     make(chan struct{}),
		ids:          map[string]int{},
	}
	interval := cfg.KeepaliveInterval
	if interval <= 0 {
		interval = defaultKeepaliveInterval
	}
	go keepalive(s.client, interval, keepaliveMaxFailures, s.stopKeep, s.keepDone)
	s.warmShell()
	return s, nil
}

// Name returns the host's plan name.
func (s *SSH) Name() string { return s.name }

// SSHEndpoint is where an SSH executor connected: what another host needs
// to reach the same machine by SSH and to verify it is the same machine.
type SSHEndpoint struct {
	User, Host string // after ~/.ssh/config (HostName, User)
	Port       int
	// HostKey is the key verified against known_hosts when connecting.
	HostKey ssh.PublicKey
	// Direct is false when the connection went through jump hosts: then
	// Host may not be reachable from elsewhere.
	Direct bool
}

// Endpoint returns where s is connected.
func (s *SSH) Endpoint() SSHEndpoint { return s.endpoint }

// EndpointOf returns the SSH endpoint behind e (looking through ReadOnly
// and recording wrappers), or false when e is not an SSH host.
func EndpointOf(e Executor) (SSHEndpoint, bool) {
	for {
		switch x := e.(type) {
		case *SSH:
			return x.endpoint, true
		case interface{ Unwrap() Executor }:
			e = x.Unwrap()
		default:
			return SSHEndpoint{}, false
		}
	}
}

// Close closes the SFTP client, the connection and its jump connections.
func (s *SSH) Close() error {
	s.closeOnce.Do(func() {
		close(s.stopKeep)
		<-s.keepDone
		// The connection goes first: closing the SFTP client waits for
		// the server's goodbye, which a dead peer never sends.
		err := s.client.Close()
		if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
			err = nil // already closed by keepalive or the peer
		}
		s.closeErr = err
		s.sftpMu.Lock()
		if s.sftp != nil {
			s.sftp.Close()
			s.sftp = nil
		}
		s.sftpMu.Unlock()
		for i := len(s.jumps) - 1; i >= 0; i-- {
			s.jumps[i].Close()
		}
	})
	return s.closeErr
}

// commandLine renders cmd as the one string the remote login shell runs.
func (s *SSH) commandLine(cmd Command) string {
	line := shellLine(cmd)
	if cmd.Become != "" {
		line = QuoteArgv(becomeArgv(s.becomeMethod, cmd.Become, line))
	}
	return line
}

// Run runs cmd in a new session channel. See Executor.Run.
func (s *SSH) Run(ctx context.Context, cmd Command) (Result, error) {
	if err := checkCommand(s.name, cmd); err != nil {
		return Result{}, err
	}
	shown := displayCommand(cmd)
	in, viaShell := []byte(nil), cmd.Stdin == nil
	if !viaShell {
		in, viaShell = shellStdin(&cmd)
	}
	if viaShell {
		if res, ok, err := s.runInShell(ctx, cmd, shown, in); ok {
			return res, err
		}
	}
	select {
	case s.sessions <- struct{}{}:
		defer func() { <-s.sessions }()
	case <-ctx.Done():
		return Result{}, fmt.Errorf("%s: %s: %w", s.name, shown, ctx.Err())
	}
	sess, err := s.newSession(ctx)
	if err != nil {
		// No channel, so the command certainly did not start.
		return Result{}, fmt.Errorf("%s: %s: open session: %w", s.name, shown, err)
	}
	defer sess.Close()
	out := newOutput(cmd)
	sess.Stdout, sess.Stderr = out.Stdout(), out.Stderr()
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		// A pipe fed by our own goroutine rather than sess.Stdin: the
		// session would otherwise wait for a reader that never ends
		// (a terminal) after the command has exited.
		if stdin, err = sess.StdinPipe(); err != nil {
			return Result{}, fmt.Errorf("%s: %s: %w", s.name, shown, err)
		}
	}

	start := time.Now()
	if err := sess.Start(s.commandLine(cmd)); err != nil {
		return Result{}, fmt.Errorf("%s: %s: start: %w", s.name, shown, err)
	}
	if stdin != nil {
		go func() {
			io.Copy(stdin, cmd.Stdin)
			stdin.Close()
		}()
	}
	waitErr := s.wait(ctx, sess)
	res := Result{Duration: time.Since(start)}
	res.Stdout, res.Stderr = out.result()
	var ee *ssh.ExitError
	switch {
	case ctx.Err() != nil:
		res.ExitCode = -1
		return res, fmt.Errorf("%s: %s: %w", s.name, shown, ctx.Err())
	case waitErr == nil:
		return res, nil
	case errors.As(waitErr, &ee):
		// ExitStatus is already 128+signal for a command killed by one.
		res.ExitCode = ee.ExitStatus()
		return res, requireTTYHint(newExitError(s.name, cmd, res.ExitCode, res.Stderr))
	default:
		// *ssh.ExitMissingError or a broken connection: the command may
		// have run to completion, partly, or not at all.
		res.ExitCode = -1
		return res, fmt.Errorf("%s: %s: %w (%v)", s.name, shown, ErrOutcomeUnknown, waitErr)
	}
}

// wait waits for the session to end. On cancel it kills the command and
// closes the channel, but waits only killGrace for the peer to confirm: on
// a dead connection no confirmation comes until keepalive gives up, and a
// cancelled step must not hang that long.
func (s *SSH) wait(ctx context.Context, sess *ssh.Session) error {
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	// sshd delivers the signal to the remote shell; closing the channel
	// also closes its pipes, so what remains dies on SIGPIPE.
	go func() {
		_ = sess.Signal(ssh.SIGKILL)
		sess.Close()
	}()
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		return ctx.Err()
	}
}

// newSession opens a session channel, giving up when ctx ends: on a
// connection that went silent the open is never confirmed. A session that
// arrives after that is closed unused.
func (s *SSH) newSession(ctx context.Context) (*ssh.Session, error) {
	type result struct {
		sess *ssh.Session
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		sess, err := s.client.NewSession()
		ch <- result{sess, err}
	}()
	select {
	case r := <-ch:
		return r.sess, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.sess != nil {
				r.sess.Close()
			}
		}()
		return nil, ctx.Err()
	}
}
