// Package sshtest runs an in-process SSH server for tests: public-key
// authentication, "exec" sessions run with sh as the current user, the
// "sftp" subsystem, "direct-tcpip" forwarding (for ProxyJump) and keepalive
// requests. It also cuts or freezes live connections on demand, to test
// resumes and dead-peer detection.
package sshtest

// Longer than 400 lines on purpose: tests read the server as one account
// of what a real sshd does that they rely on.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Options configure a Server.
type Options struct {
	// HostKey is the server's key; nil generates an ed25519 key.
	HostKey ssh.Signer
	// AuthorizedKeys may log in. Empty refuses every client.
	AuthorizedKeys []ssh.PublicKey
	// User, when set, is the only user name accepted.
	User string
	// Env is added to the environment of executed commands, e.g. a PATH
	// that puts fake sudo and su first.
	Env []string
	// Home is the login directory for commands and relative SFTP paths;
	// empty means a fresh t.TempDir().
	Home string
}

// Server is a running test SSH server. Its methods are safe for concurrent
// use.
type Server struct {
	t    testing.TB
	ln   net.Listener
	opts Options

	mu         sync.Mutex
	hostKey    ssh.Signer
	conns      map[*conn]struct{}
	handshakes int
	keepalives int
	users      []string
	execs      []string
	frozen     bool
	closed     bool

	wg sync.WaitGroup
}

// Start starts a server on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.HostKey == nil {
		opts.HostKey, _ = NewKey(t)
	}
	if opts.Home == "" {
		opts.Home = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, ln: ln, opts: opts, hostKey: opts.HostKey, conns: map[*conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

// Addr is the server's "127.0.0.1:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Port is the server's TCP port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Home is the login directory.
func (s *Server) Home() string { return s.opts.Home }

// HostKey is the key the server presents to new connections.
func (s *Server) HostKey() ssh.PublicKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hostKey.PublicKey()
}

// SetHostKey changes the key presented to connections made from now on.
func (s *Server) SetHostKey(key ssh.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hostKey = key
}

// KnownHostsLine is the known_hosts line for the server's current key.
func (s *Server) KnownHostsLine() string {
	return knownhosts.Line([]string{s.Addr()}, s.HostKey())
}

// WriteKnownHosts writes a known_hosts file holding KnownHostsLine and
// returns its path.
func (s *Server) WriteKnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(s.KnownHostsLine()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Handshakes counts the SSH connections that completed authentication.
func (s *Server) Handshakes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handshakes
}

// Keepalives counts the keepalive@openssh.com requests received.
func (s *Server) Keepalives() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keepalives
}

// Users lists the user names of authenticated connections, in order.
func (s *Server) Users() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.users...)
}

// Execs returns the commands of every exec request so far, in order.
func (s *Server) Execs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.execs)
}

// CloseConnections cuts every live connection at the TCP level, as a
// network failure would, killing the commands they ran.
func (s *Server) CloseConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		c.Close()
	}
}

// Freeze makes every live and future connection stop reading and writing,
// like a peer that vanished without closing TCP: clients notice only
// through keepalives or timeouts. Close ends it.
func (s *Server) Freeze() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
	for c := range s.conns {
		c.freeze()
	}
}

// Close stops the server and cuts all connections. Start registers it
// with t.Cleanup; calling it earlier is fine.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.t.Errorf("sshtest: server goroutines still running 10s after Close")
	}
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		c := newConn(nc)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		if s.frozen {
			c.freeze()
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *Server) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(meta ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.opts.User != "" && meta.User() != s.opts.User {
				return nil, fmt.Errorf("user %q not allowed", meta.User())
			}
			for _, k := range s.opts.AuthorizedKeys {
				if k.Type() == key.Type() && string(k.Marshal()) == string(key.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("key not authorized")
		},
	}
	s.mu.Lock()
	cfg.AddHostKey(s.hostKey)
	s.mu.Unlock()
	return cfg
}

func (s *Server) serve(c *conn) {
	defer c.Close()
	sc, chans, reqs, err := ssh.NewServerConn(c, s.config())
	if err != nil {
		return
	}
	defer sc.Close()
	s.mu.Lock()
	s.handshakes++
	s.users = append(s.users, sc.User())
	s.mu.Unlock()

	go func() {
		for req := range reqs {
			if req.Type == "keepalive@openssh.com" {
				s.mu.Lock()
				s.keepalives++
				s.mu.Unlock()
			}
			// OpenSSH answers unknown global requests, keepalives
			// included, with a failure; either reply proves liveness.
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			ch, creqs, err := nc.Accept()
			if err != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				s.session(ch, creqs)
			}()
		case "direct-tcpip":
			wg.Add(1)
			go func() {
				defer wg.Done()
				directTCPIP(nc)
			}()
		default:
			nc.Reject(ssh.UnknownChannelType, "unsupported channel type")
		}
	}
}

// session serves one session channel: one exec or sftp, plus signals.
func (s *Server) session(ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer ch.Close()
	var proc *process
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if proc != nil || ssh.Unmarshal(req.Payload, &p) != nil {
				req.Reply(false, nil)
				continue
			}
			s.mu.Lock()
			s.execs = append(s.execs, p.Command)
			s.mu.Unlock()
			var err error
			proc, err = s.start(ch, p.Command)
			req.Reply(err == nil, nil)
			if err != nil {
				return
			}
			// Only now may the command's end close the channel: sshd
			// answers exec before it reaps the child, and a close that
			// overtook the reply would fail the client's Start with EOF.
			go proc.reap(ch)
		case "subsystem":
			var p struct{ Name string }
			if ssh.Unmarshal(req.Payload, &p) != nil || p.Name != "sftp" {
				req.Reply(false, nil)
				continue
			}
			req.Reply(true, nil)
			go func() {
				defer ch.Close()
				srv, err := sftp.NewServer(ch, sftp.WithServerWorkingDirectory(s.opts.Home))
				if err != nil {
					return
				}
				srv.Serve()
				srv.Close()
			}()
		case "signal":
			var p struct{ Signal string }
			if ssh.Unmarshal(req.Payload, &p) == nil && proc != nil {
				proc.signal(signals[p.Signal])
			}
			if req.WantReply {
				req.Reply(true, nil)
			}
		default:
			if req.WantReply {
				req.Reply(false, nil)
			}
		}
	}
	// The client closed the channel or the connection died: like sshd
	// hanging up, make sure the command does not linger.
	if proc != nil {
		select {
		case <-proc.done:
		default:
			proc.signal(syscall.SIGKILL)
			<-proc.done
		}
	}
}

var signals = map[string]syscall.Signal{
	"KILL": syscall.SIGKILL, "TERM": syscall.SIGTERM, "INT": syscall.SIGINT,
	"HUP": syscall.SIGHUP, "QUIT": syscall.SIGQUIT, "USR1": syscall.SIGUSR1,
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func (p *process) signal(sig syscall.Signal) {
	if sig != 0 {
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// start runs command with sh -c in its own process group, wired to ch;
// reap reports its end.
func (s *Server) start(ch ssh.Channel, command string) (*process, error) {
	cmd := exec.Command("sh", "-c", command)
	cmd.Dir = s.opts.Home
	cmd.Env = append(os.Environ(), s.opts.Env...)
	cmd.Stdout = ch
	cmd.Stderr = ch.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 2 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// Copy stdin by hand: exec would make Wait wait for a client that
	// never closes its side.
	go func() {
		io.Copy(stdin, ch)
		stdin.Close()
	}()
	return &process{cmd: cmd, done: make(chan struct{})}, nil
}

// reap waits for the command and reports its exit status on ch.
func (p *process) reap(ch ssh.Channel) {
	defer close(p.done)
	p.cmd.Wait()
	ws, _ := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if ws.Signaled() {
		name := "KILL"
		for n, sig := range signals {
			if sig == ws.Signal() {
				name = n
			}
		}
		ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
			Signal     string
			CoreDumped bool
			Error      string
			Lang       string
		}{Signal: name}))
	} else {
		ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(ws.ExitStatus())}))
	}
	ch.Close()
}

// directTCPIP forwards a channel to the TCP address it names, as sshd does
// for `ssh -J`.
func directTCPIP(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad payload")
		return
	}
	tc, err := net.Dial("tcp", net.JoinHostPort(p.Host, fmt.Sprint(p.Port)))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		tc.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	done := make(chan struct{}, 2)
	go func() { io.Copy(tc, ch); tc.(*net.TCPConn).CloseWrite(); done <- struct{}{} }()
	go func() { io.Copy(ch, tc); ch.CloseWrite(); done <- struct{}{} }()
	<-done
	<-done
	ch.Close()
	tc.Close()
}

// conn is a server-side connection that can be frozen: once frozen, reads
// and writes block until it is closed, and data already read is dropped.
type conn struct {
	net.Conn
	frozen    chan struct{}
	freezeOne sync.Once
	closed    chan struct{}
	closeOne  sync.Once
}

func newConn(c net.Conn) *conn {
	return &conn{Conn: c, frozen: make(chan struct{}), closed: make(chan struct{})}
}

func (c *conn) freeze() { c.freezeOne.Do(func() { close(c.frozen) }) }

func (c *conn) Close() error {
	c.closeOne.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *conn) stall() error {
	select {
	case <-c.frozen:
		<-c.closed
		return net.ErrClosed
	default:
		return nil
	}
}

func (c *conn) Read(p []byte) (int, error) {
	if err := c.stall(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(p)
	if err := c.stall(); err != nil {
		return 0, err
	}
	return n, err
}

func (c *conn) Write(p []byte) (int, error) {
	if err := c.stall(); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}
