package pg

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/migrun/migrun/executors"
)

// Session is one psql kept open for several scripts in a row. Each psql
// started costs 100 ms and more before its first query (the command on
// the host, becoming postgres, Debian's pg_wrapper, the connection and
// the backend's start: measured 110-165 ms on the faithful stand-in), and
// a step in the downtime that talks to a server three or four times pays
// it each time. A session pays it once, and its scripts share one
// connection: what one SETs stays for the next.
//
// Scripts run one at a time. psql runs with ON_ERROR_STOP, so a failing
// statement ends the session: that Run returns the error (psql's exit,
// its stderr), and so does every later one.
type Session struct {
	host string
	stop context.CancelFunc // ends psql
	in   *io.PipeWriter
	out  *sessionOutput
	done chan struct{}
	// Once done is closed: runErr is how psql ended, err what Run
	// returns from then on.
	runErr, err error

	mu sync.Mutex // one script at a time
}

// OpenSession starts psql for t on e. It does not wait for the
// connection: a psql that cannot start fails the first Run. readOnly
// marks the session as a probe: the scripts only read (a dry run's
// executor accepts it). Close ends it.
func OpenSession(ctx context.Context, e executors.Executor, t Target, readOnly bool) *Session {
	cmd := t.PsqlCommand("", readOnly)
	// Named by what it is, so that a recording executor does not read the
	// stdin (which never ends before Close) to name it; its answers are
	// not fingerprinted.
	cmd.Fact = "postgresql " + t.String() + ": a psql session"
	cmd.Unstable = "a session's scripts are its caller's"
	return openSession(ctx, e, cmd)
}

func openSession(ctx context.Context, e executors.Executor, cmd executors.Command) *Session {
	r, w := io.Pipe()
	ctx, stop := context.WithCancel(ctx)
	s := &Session{host: e.Name(), stop: stop, in: w, out: newSessionOutput(), done: make(chan struct{})}
	cmd.Stdin, cmd.Stdout = r, s.out
	go func() {
		_, s.runErr = e.Run(ctx, cmd)
		if s.runErr != nil {
			s.err = fmt.Errorf("%s: psql: %w", e.Name(), s.runErr)
		} else {
			// Closed, or ended of itself: nothing more will answer.
			s.err = fmt.Errorf("%s: psql: %w", e.Name(), errSessionEnded)
		}
		r.CloseWithError(s.err) // a script still being written fails too
		stop()
		close(s.done)
	}()
	return s
}

// Run runs sql (statements and psql meta-commands, ending with a newline
// or not) and returns the rows it printed, split into fields as Query's.
func (s *Session) Run(ctx context.Context, sql string) ([][]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case <-s.done:
		return nil, s.err
	default:
	}
	// The end of this script's output is a line no row can print.
	tok := make([]byte, 12)
	rand.Read(tok)
	end := "migrun-session-end-" + hex.EncodeToString(tok)
	if !strings.HasSuffix(sql, "\n") {
		sql += "\n"
	}
	script := sql + `\echo ` + end + "\n"
	// Written aside: psql may answer before it has read the whole script.
	// A write that fails means psql ended, which done reports.
	go func() { _, _ = io.WriteString(s.in, script) }()
	for {
		if out, ok := s.out.cut(end); ok {
			return ParseRows(out), nil
		}
		select {
		case <-s.out.wake:
		case <-s.done:
			// The end line may have come with psql's last output.
			if out, ok := s.out.cut(end); ok {
				return ParseRows(out), nil
			}
			return nil, s.err
		case <-ctx.Done():
			// The script may be half run: psql goes, the session
			// cannot be trusted with another.
			s.stop()
			return nil, fmt.Errorf("%s: psql: %w", s.host, ctx.Err())
		}
	}
}

// errSessionEnded is a session's psql gone without an error: closed, or
// ended of itself (\q).
var errSessionEnded = errors.New("the session has ended")

// Close ends psql (the end of its input) and waits for it; it returns
// how psql ended if that was a failure.
func (s *Session) Close() error {
	s.in.Close()
	<-s.done
	if s.runErr != nil {
		return s.err
	}
	return nil
}

// sessionOutput gathers psql's standard output as it comes.
type sessionOutput struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	wake chan struct{} // signalled after each write
}

func newSessionOutput() *sessionOutput { return &sessionOutput{wake: make(chan struct{}, 1)} }

func (o *sessionOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	o.buf.Write(p)
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
	return len(p), nil
}

// cut returns, once the line end has come, what came before it, and
// drops both.
func (o *sessionOutput) cut(end string) ([]byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	b := o.buf.Bytes()
	var i int
	switch {
	case bytes.HasPrefix(b, []byte(end+"\n")):
		i = 0
	default:
		j := bytes.Index(b, []byte("\n"+end+"\n"))
		if j < 0 {
			return nil, false
		}
		i = j + 1
	}
	out := append([]byte(nil), b[:i]...)
	o.buf.Next(i + len(end) + 1)
	return out, true
}

// Script runs SQL on one database and returns the rows it printed: a
// Session, or Once.
type Script interface {
	Run(ctx context.Context, sql string) ([][]string, error)
}

// Once runs each script in a psql of its own, as Exec does (a script may
// change the server), its rows read whole.
type Once struct {
	Ex     executors.Executor
	Target Target
}

func (o Once) Run(ctx context.Context, sql string) ([][]string, error) {
	cmd := o.Target.PsqlCommand(sql, false)
	var out bytes.Buffer
	cmd.Stdout = &out
	if _, err := runPsql(ctx, o.Ex, cmd); err != nil {
		return nil, err
	}
	return ParseRows(out.Bytes()), nil
}
