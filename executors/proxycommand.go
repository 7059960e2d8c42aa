package executors

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// dialProxyCommand runs an ssh_config ProxyCommand as ssh does (the
// user's $SHELL, or /bin/sh, with -c) and returns a connection over its
// stdin and stdout. They are one end of a socket pair, so the connection
// has real deadlines; closing it ends the command. The command's stderr
// is the user's, as with ssh.
func dialProxyCommand(command string) (net.Conn, error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "proxy-command")
	theirs := os.NewFile(uintptr(fds[1]), "proxy-command-stdio")
	defer theirs.Close()
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	cmd := exec.Command(shell, "-c", command)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = theirs, theirs, os.Stderr
	if err := cmd.Start(); err != nil {
		ours.Close()
		return nil, fmt.Errorf("ProxyCommand %q: %w", command, err)
	}
	nc, err := net.FileConn(ours)
	ours.Close() // FileConn holds its own duplicate
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("ProxyCommand: %w", err)
	}
	return &proxyConn{Conn: nc, cmd: cmd}, nil
}

// proxyCommandGrace is how long a proxy command has to exit once its
// connection is closed.
const proxyCommandGrace = 2 * time.Second

// proxyConn ends the command when the connection is closed. The SSH
// library may close it from more than one goroutine: the first does it.
type proxyConn struct {
	net.Conn
	cmd  *exec.Cmd
	once sync.Once
	err  error
}

func (c *proxyConn) Close() error {
	c.once.Do(func() {
		c.err = c.Conn.Close()
		// ssh sends SIGHUP to its proxy command. One that ignores it and
		// its closed stdin is killed rather than waited for forever.
		_ = c.cmd.Process.Signal(syscall.SIGHUP)
		done := make(chan struct{})
		go func() { _ = c.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(proxyCommandGrace):
			_ = c.cmd.Process.Kill()
			<-done
		}
	})
	return c.err
}
