package executors

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"

	"github.com/migrun/migrun/internal/secret"
)

// Become methods understood by Local and SSH.
const (
	BecomeSudo = "sudo"
	BecomeSu   = "su"
)

// exitStderrMax bounds the stderr tail carried by an ExitError, which ends up
// in one-line error messages.
const exitStderrMax = 2 << 10

// checkCommand refuses malformed commands and commands that would put a
// secret token where other users of the host can read it (argv and the
// environment are visible in ps and /proc).
func checkCommand(host string, cmd Command) error {
	if (len(cmd.Argv) == 0) == (cmd.Script == "") {
		return fmt.Errorf("%s: command needs exactly one of argv and script", host)
	}
	for _, w := range cmd.Argv {
		if secret.Contains(w) {
			return fmt.Errorf("%s: argv of %s: %w", host, displayCommand(cmd), ErrSecretInArgv)
		}
	}
	if secret.Contains(cmd.Script) {
		return fmt.Errorf("%s: script %s: %w", host, displayCommand(cmd), ErrSecretInArgv)
	}
	for k, v := range cmd.Env {
		if secret.Contains(k) || secret.Contains(v) {
			return fmt.Errorf("%s: environment variable %s of %s: %w", host, secret.Mask(k), displayCommand(cmd), ErrSecretInArgv)
		}
		if !validEnvName(k) {
			return fmt.Errorf("%s: invalid environment variable name %q", host, k)
		}
	}
	if secret.Contains(cmd.Dir) || secret.Contains(cmd.Become) {
		return fmt.Errorf("%s: working directory or become user of %s: %w", host, displayCommand(cmd), ErrSecretInArgv)
	}
	return nil
}

func validEnvName(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && '0' <= c && c <= '9' {
			continue
		}
		return false
	}
	return true
}

// checkBecomeMethod validates a host's become method; empty means sudo.
func checkBecomeMethod(m string) (string, error) {
	switch m {
	case "", BecomeSudo:
		return BecomeSudo, nil
	case BecomeSu:
		return BecomeSu, nil
	}
	return "", fmt.Errorf("unknown become method %q (want %q or %q)", m, BecomeSudo, BecomeSu)
}

// envAssignments renders Env as sorted NAME=value words, sorted so that the
// same command always renders the same way.
func envAssignments(env map[string]string) []string {
	kv := make([]string, 0, len(env))
	for k, v := range env {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return kv
}

// shellLine renders cmd (without Become) as one sh command line:
// `cd DIR && env K=V ... ARGV` or `... sh -c SCRIPT`.
func shellLine(cmd Command) string {
	var words []string
	if len(cmd.Env) > 0 {
		words = append(words, "env")
		words = append(words, envAssignments(cmd.Env)...)
	}
	if cmd.Script != "" {
		words = append(words, "sh", "-c", cmd.Script)
	} else {
		words = append(words, cmd.Argv...)
	}
	line := QuoteArgv(words)
	if cmd.Dir != "" {
		line = "cd " + Quote(cmd.Dir) + " && " + line
	}
	return line
}

// becomeArgv wraps a shell line so that it runs as user. sudo -n fails
// instead of prompting for a password, which would hang an unattended run.
// su - starts a login shell, so HOME and PATH are the target user's.
func becomeArgv(method, user, line string) []string {
	if method == BecomeSu {
		return []string{"su", "-", user, "-c", line}
	}
	return []string{"sudo", "-n", "-u", user, "--", "sh", "-c", line}
}

// displayCommand renders cmd for error messages and logs: argv quoted,
// scripts shortened to their first line. Tokens are masked, never revealed.
func displayCommand(cmd Command) string {
	var s string
	if cmd.Script != "" {
		script := strings.TrimSpace(cmd.Script)
		if i := strings.IndexByte(script, '\n'); i >= 0 {
			script = script[:i] + " ..."
		}
		if len(script) > 120 {
			script = script[:120] + " ..."
		}
		s = "sh -c " + Quote(script)
	} else {
		s = QuoteArgv(cmd.Argv)
	}
	if cmd.Become != "" {
		s = "(as " + cmd.Become + ") " + s
	}
	return secret.Mask(s)
}

// Tail keeps the last bytes written to it, up to a bound: the end of a
// command's output, which is where the error is. It is safe for
// concurrent use. It is migrun's one output tail.
type Tail struct {
	mu  sync.Mutex
	max int
	buf []byte
}

// NewTail keeps the last max bytes.
func NewTail(max int) *Tail { return &Tail{max: max} }

func (t *Tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := len(p)
	if len(p) > t.max {
		p = p[len(p)-t.max:]
	}
	// Let the buffer grow to twice max before sliding, so that a stream of
	// small writes costs amortised O(1) per byte.
	if len(t.buf)+len(p) > 2*t.max {
		keep := t.max - len(p)
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-keep:]...)
	}
	t.buf = append(t.buf, p...)
	return n, nil
}

// Bytes returns a copy of the tail.
func (t *Tail) Bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.max {
		b = b[len(b)-t.max:]
	}
	return bytes.Clone(b)
}

func (t *Tail) String() string { return string(t.Bytes()) }

// LastBytes keeps the last n bytes of s, starting at a line where it can,
// marked with "…" when it cut.
func LastBytes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[len(s)-n:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "…" + s
}

// output is the stdout and stderr plumbing of one command: the caller's
// writers (if any) plus a bounded tail of each for the Result. One mutex
// serialises both streams, so a caller may pass the same writer (a
// terminal, a log) for both even if it is not safe for concurrent use.
type output struct {
	mu                     sync.Mutex
	done                   bool
	stdoutTail, stderrTail *Tail
	stdout, stderr         io.Writer // the caller's, may be nil
	stdoutBroken           bool
	stderrBroken           bool
}

func newOutput(cmd Command) *output {
	return &output{
		stdoutTail: NewTail(OutputTail),
		stderrTail: NewTail(OutputTail),
		stdout:     cmd.Stdout,
		stderr:     cmd.Stderr,
	}
}

// Stdout and Stderr return the writers to hand to the process.
func (o *output) Stdout() io.Writer { return streamWriter{o, false} }
func (o *output) Stderr() io.Writer { return streamWriter{o, true} }

type streamWriter struct {
	o      *output
	stderr bool
}

// Write feeds the tail and the caller's writer. A failing caller writer is
// skipped from then on instead of failing the command: the process must not
// get SIGPIPE because a progress display broke. Output arriving after the
// result was taken (a command abandoned on a dead connection) is dropped.
func (w streamWriter) Write(p []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return len(p), nil
	}
	tail, dst, broken := o.stdoutTail, o.stdout, &o.stdoutBroken
	if w.stderr {
		tail, dst, broken = o.stderrTail, o.stderr, &o.stderrBroken
	}
	tail.Write(p)
	if dst != nil && !*broken {
		if _, err := dst.Write(p); err != nil {
			*broken = true
		}
	}
	return len(p), nil
}

// result returns the tails and detaches the caller's writers.
func (o *output) result() (stdout, stderr []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.done = true
	return o.stdoutTail.Bytes(), o.stderrTail.Bytes()
}

// newExitError builds the error for a command that exited non-zero.
func newExitError(host string, cmd Command, code int, stderr []byte) *ExitError {
	return &ExitError{
		Host:     host,
		Command:  displayCommand(cmd),
		ExitCode: code,
		Stderr:   stderrTail(stderr),
	}
}

// stderrTail trims stderr to its last exitStderrMax bytes, starting at a
// line boundary when one is near, for a readable one-line error.
func stderrTail(b []byte) string {
	s := LastBytes(string(bytes.TrimSpace(b)), exitStderrMax)
	return secret.Mask(strings.ToValidUTF8(s, "\uFFFD"))
}

// requireTTYHint explains sudo's "you must have a tty" refusal (RHEL 7's
// default "Defaults requiretty"): migrun runs commands without a terminal.
func requireTTYHint(err error) error {
	var ee *ExitError
	if errors.As(err, &ee) && strings.Contains(ee.Stderr, "must have a tty") {
		return fmt.Errorf("%w (sudo on this host requires a terminal: remove \"Defaults requiretty\" for this user in sudoers, or use become method su)", err)
	}
	return err
}
