package executors

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// A session per command costs a channel open, an exec request and a login
// shell started by sshd: milliseconds, paid by every step and every probe.
// So commands run in one long-lived `sh` per connection instead, written
// to its stdin one at a time, each in a subshell (an `exit` or `cd` stays
// inside it) with stdin from /dev/null, or from a here-document when the
// command's stdin is a short text held in memory (a psql script; see
// shellStdin); any other stdin takes a session. After each
// command the shell prints a marker with a random token and the exit
// status on stdout, and the token on stderr: everything before them is
// the command's output, byte for byte (the newline the marker starts with
// is ours and is dropped).
//
// A command that is cancelled or whose connection breaks takes the shell
// down with it: the next command starts a new one.
//
// The shell is started as soon as the connection is up, in the
// background: sshd answers the first channel of a connection only tens of
// milliseconds after authentication (its post-authentication set-up), and
// the shell itself takes as long again to start. Dialled hosts warm up
// together while the runner reads the plan's facts, instead of one after
// the other inside each host's first step.

// shellMarker opens every marker; \x1e (record separator) keeps it off
// any line a command prints by chance, and the token does the rest.
const shellMarker = "\n\x1emigrun-done "

type pipeShell struct {
	sess   *ssh.Session
	stdin  io.WriteCloser
	stdout *markerReader
	stderr *markerReader
}

// warmShell starts the connection's shell in the background. Commands
// wait for it (see shellFor); if it cannot start, they start it again or
// open sessions, as they would without it.
func (s *SSH) warmShell() {
	s.warmed = make(chan struct{})
	s.shellMu.Lock()
	go func() {
		defer close(s.warmed)
		defer s.shellMu.Unlock()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			select {
			case <-s.stopKeep: // Close
				cancel()
			case <-ctx.Done():
			}
		}()
		// A first command waits for the login shell to exec sh and
		// read its stdin, so that the step's own command does not.
		if s.startShell(ctx) == nil {
			_, _, _ = s.runOn(ctx, s.shell, Command{Argv: []string{"true"}}, "true", nil)
		}
	}()
}

// shellFor returns the connection's shell, starting it if needed, or nil
// when it is busy with another command (the caller then opens a session).
func (s *SSH) shellFor(ctx context.Context) (*pipeShell, func(), error) {
	if s.warmed != nil {
		select {
		case <-s.warmed:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
	if !s.shellMu.TryLock() {
		return nil, nil, nil
	}
	release := s.shellMu.Unlock
	if err := s.startShell(ctx); err != nil {
		release()
		return nil, nil, err
	}
	return s.shell, release, nil
}

// startShell starts the shell unless it runs; s.shellMu is held.
func (s *SSH) startShell(ctx context.Context) error {
	if s.shell != nil {
		return nil
	}
	sess, err := s.newSession(ctx)
	if err != nil {
		return err
	}
	sh := &pipeShell{sess: sess}
	if sh.stdin, err = sess.StdinPipe(); err == nil {
		var out, errOut io.Reader
		if out, err = sess.StdoutPipe(); err == nil {
			if errOut, err = sess.StderrPipe(); err == nil {
				sh.stdout, sh.stderr = newMarkerReader(out), newMarkerReader(errOut)
				err = sess.Start("exec /bin/sh")
			}
		}
	}
	if err != nil {
		sess.Close()
		return err
	}
	s.shell = sh
	return nil
}

// dropShell ends the shell after a failure; s.shellMu is held.
func (s *SSH) dropShell() {
	if s.shell != nil {
		s.shell.sess.Close()
		s.shell = nil
	}
}

// runInShell runs cmd in the connection's shell. ok is false when the
// shell was busy or could not start and nothing ran: use a session.
func (s *SSH) runInShell(ctx context.Context, cmd Command, shown string, in []byte) (res Result, ok bool, err error) {
	sh, release, err := s.shellFor(ctx)
	if sh == nil || err != nil {
		return Result{}, false, nil
	}
	defer release()
	return s.runOn(ctx, sh, cmd, shown, in)
}

// runOn runs cmd in sh with stdin in (from shellStdin; none: empty); cmd's
// own Stdin is not read. s.shellMu is held.
func (s *SSH) runOn(ctx context.Context, sh *pipeShell, cmd Command, shown string, in []byte) (res Result, ok bool, err error) {
	token := make([]byte, 8)
	rand.Read(token)
	tok := hex.EncodeToString(token)
	stdin, body := "</dev/null", ""
	if len(in) > 0 {
		// The body starts on the line after the one that opens it; the
		// delimiter is the token, on no line of the text (shellStdin).
		stdin, body = "<<'"+heredocPrefix+tok+"'", string(in)+heredocPrefix+tok+"\n"
	}
	line := "( " + s.commandLine(cmd) + "\n) " + stdin + "; printf '\\n\\036migrun-done %s %d\\n' " + tok + " \"$?\"; printf '\\n\\036migrun-done %s\\n' " + tok + " >&2\n" + body

	out := newOutput(cmd)
	start := time.Now()
	if _, err := io.WriteString(sh.stdin, line); err != nil {
		s.dropShell()
		// The shell was gone before it read the command: nothing ran.
		return Result{}, false, nil
	}
	type streamEnd struct {
		status string
		err    error
	}
	outDone, errDone := make(chan streamEnd, 1), make(chan streamEnd, 1)
	go func() {
		st, err := sh.stdout.until(tok, out.Stdout(), true)
		outDone <- streamEnd{st, err}
	}()
	go func() {
		_, err := sh.stderr.until(tok, out.Stderr(), false)
		errDone <- streamEnd{"", err}
	}()
	var o, e streamEnd
	for got := 0; got < 2; got++ {
		select {
		case o = <-outDone:
		case e = <-errDone:
		case <-ctx.Done():
			// The command cannot be stopped alone: end the shell, which
			// closes its pipes; what remains dies on SIGPIPE, as with a
			// session.
			_ = sh.sess.Signal(ssh.SIGKILL)
			s.dropShell()
			res.ExitCode = -1
			res.Stdout, res.Stderr = out.result()
			return res, true, fmt.Errorf("%s: %s: %w", s.name, shown, ctx.Err())
		}
	}
	res.Duration = time.Since(start)
	res.Stdout, res.Stderr = out.result()
	if o.err != nil || e.err != nil {
		s.dropShell()
		res.ExitCode = -1
		return res, true, fmt.Errorf("%s: %s: %w (%v)", s.name, shown, ErrOutcomeUnknown, errors.Join(o.err, e.err))
	}
	res.ExitCode, err = strconv.Atoi(o.status)
	if err != nil {
		s.dropShell()
		return res, true, fmt.Errorf("%s: %s: bad status %q from the shell: %w", s.name, shown, o.status, ErrOutcomeUnknown)
	}
	if res.ExitCode != 0 {
		return res, true, requireTTYHint(newExitError(s.name, cmd, res.ExitCode, res.Stderr))
	}
	return res, true, nil
}

// heredocPrefix starts the delimiter of a command's here-document.
const heredocPrefix = "MIGRUN_STDIN_"

// maxShellStdin bounds the stdin that goes through the shell: scripts and
// queries, not data.
const maxShellStdin = 256 << 10

// shellStdin tells whether cmd's stdin can go to the shell as a
// here-document, byte for byte: no secret (see Command.SecretStdin), a
// reader over memory (nothing to wait for, unlike a pipe whose writer
// may wait for this command's output),
// short, text without NUL, ending with a newline (a here-document's body
// always does) and with no line that could end the document early. It
// returns the bytes and leaves in cmd a reader of the same bytes, for a
// session if the shell cannot take the command after all.
func shellStdin(cmd *Command) ([]byte, bool) {
	l, ok := cmd.Stdin.(interface{ Len() int })
	if !ok || l.Len() > maxShellStdin || cmd.SecretStdin {
		return nil, false
	}
	in, err := io.ReadAll(cmd.Stdin)
	if err != nil {
		cmd.Stdin = io.MultiReader(bytes.NewReader(in), errReader{err})
		return nil, false
	}
	cmd.Stdin = bytes.NewReader(in)
	ok = (len(in) == 0 || in[len(in)-1] == '\n') && bytes.IndexByte(in, 0) < 0 && !bytes.Contains(in, []byte(heredocPrefix))
	return in, ok
}

// errReader returns err once its data is read: a stdin that failed
// mid-way still fails the command that reads it.
type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// markerReader reads one of the shell's output streams command by command.
type markerReader struct {
	r    io.Reader
	buf  []byte // read but not yet handed out
	read []byte
}

func newMarkerReader(r io.Reader) *markerReader {
	return &markerReader{r: r, read: make([]byte, 32<<10)}
}

// until copies the stream to w up to the marker with token tok and
// returns what follows the token on the marker's line (the exit status on
// stdout). Bytes that could be the start of the marker are held back
// until the next read tells.
func (m *markerReader) until(tok string, w io.Writer, status bool) (string, error) {
	marker := []byte(shellMarker + tok)
	for {
		if i := bytes.Index(m.buf, marker); i >= 0 {
			w.Write(m.buf[:i])
			rest := m.buf[i+len(marker):]
			nl := bytes.IndexByte(rest, '\n')
			if nl < 0 {
				// The marker line is not complete yet.
				if err := m.fill(); err != nil {
					return "", err
				}
				continue
			}
			line := string(bytes.TrimSpace(rest[:nl]))
			m.buf = append(m.buf[:0], rest[nl+1:]...)
			if status {
				return line, nil
			}
			return "", nil
		}
		// Hand out all but a tail that could begin the marker.
		if keep := len(marker) - 1; len(m.buf) > keep {
			w.Write(m.buf[:len(m.buf)-keep])
			m.buf = append(m.buf[:0], m.buf[len(m.buf)-keep:]...)
		}
		if err := m.fill(); err != nil {
			return "", err
		}
	}
}

func (m *markerReader) fill() error {
	n, err := m.r.Read(m.read)
	m.buf = append(m.buf, m.read[:n]...)
	if err != nil && n == 0 {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("the shell ended: %w", err)
	}
	return nil
}

// shellState is the part of SSH that runs commands in the shell.
type shellState struct {
	shellMu sync.Mutex
	shell   *pipeShell
	// warmed is closed once the start begun at dial time has ended.
	warmed chan struct{}
}
