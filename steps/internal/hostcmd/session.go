// Package hostcmd is what the kinds that run commands on one host
// (service, package, wait, firewall) share: a session on the step's host
// for one Check, Describe or Apply, read-only probes whose non-zero exit
// is an answer, and commands whose output streams to the user and whose
// tail ends up in the journal. It also holds the small text helpers every
// kind's messages use. It knows executors and secrets, never a kind.
package hostcmd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

// Cmd is a command a host kind would run, with a note its dry run adds.
type Cmd struct {
	Cmd  executors.Command
	Note string
}

// Session is the step's host for one Check, Describe or Apply. It holds
// no state beyond that call, so nothing is cached across steps.
type Session struct {
	Ex      executors.Executor
	Host    string        // the plan host's name
	Become  string        // the user commands run as, "" for the login's
	What    string        // "service nginx": names the work in errors
	Secrets secret.Values // redacts what is streamed and kept
	Out     io.Writer     // where commands' output streams; never nil

	tail *executors.Tail // output of the commands run
}

// New is a session on ex; out may be nil. keep is how much of the
// commands' output the session keeps for Output.
func New(ex executors.Executor, host, become, what string, secrets secret.Values, out io.Writer, keep int) *Session {
	if out == nil {
		out = io.Discard
	}
	return &Session{Ex: ex, Host: host, Become: become, What: what, Secrets: secrets, Out: out, tail: executors.NewTail(keep)}
}

// Where names the host (and user) for messages.
func (h *Session) Where() string {
	if h.Become != "" {
		return h.Host + " as " + h.Become
	}
	return h.Host
}

// Result is a read-only command that ran to completion.
type Result struct {
	executors.Result
	// Exit is set when the probe exited non-zero: an answer, not an error.
	Exit *executors.ExitError
}

// OK reports a zero exit.
func (r Result) OK() bool { return r.Exit == nil }

// Output is stdout and stderr, trimmed, for messages.
func (r Result) Output() string {
	out := strings.TrimSpace(string(r.Stdout))
	if e := strings.TrimSpace(string(r.Stderr)); e != "" {
		if out != "" {
			out += "\n"
		}
		out += e
	}
	return out
}

// Probe runs cmd read-only, as the session's user. A non-zero exit is
// the probe's answer (Result.Exit); the error is for a probe that could
// not run: a lost connection, a cancel, a missing program.
func (h *Session) Probe(ctx context.Context, cmd executors.Command) (Result, error) {
	cmd.ReadOnly = true
	cmd.Become = h.Become
	res, err := h.Ex.Run(ctx, cmd)
	var exit *executors.ExitError
	switch {
	case err == nil:
		return Result{Result: res}, nil
	case errors.As(err, &exit) && ctx.Err() == nil:
		if res.ExitCode == 0 {
			res.ExitCode = exit.ExitCode
		}
		return Result{Result: res, Exit: exit}, nil
	}
	return Result{Result: res}, fmt.Errorf("probe %s: %w", Show(cmd), err)
}

// Has reports whether the host has program on the PATH of the user the
// step runs as (sudo's secure_path includes /usr/sbin, a login's may not).
func (h *Session) Has(ctx context.Context, program string) (bool, error) {
	r, err := h.Probe(ctx, executors.Command{Script: "command -v " + executors.Quote(program)})
	return r.OK() && err == nil, err
}

// First returns the first of programs the host has, "" if none.
func (h *Session) First(ctx context.Context, programs ...string) (string, error) {
	for _, p := range programs {
		ok, err := h.Has(ctx, p)
		if err != nil {
			return "", err
		}
		if ok {
			return p, nil
		}
	}
	return "", nil
}

// Run runs a command that changes the host, streaming its output
// (redacted) to the user and keeping its tail.
func (h *Session) Run(ctx context.Context, c Cmd) error {
	cmd := c.Cmd
	cmd.Become = h.Become
	red := h.Secrets.Writer(h.Out)
	w := io.MultiWriter(red, h.tail)
	cmd.Stdout, cmd.Stderr = w, w
	_, err := h.Ex.Run(ctx, cmd)
	red.Flush()
	return err
}

// Output is the redacted tail of what the commands run printed, at most
// max bytes.
func (h *Session) Output(max int) string {
	return executors.LastBytes(h.Secrets.Redact(h.tail.String()), max)
}

// Line is the dry-run line for c, in the words of the command kind:
// "run on db: systemctl stop x (note)".
func (h *Session) Line(c Cmd) string {
	s := "run on " + h.Where() + ": " + Show(c.Cmd)
	if c.Note != "" {
		s += " (" + c.Note + ")"
	}
	return s
}

// Show renders a command as a person would type it.
func Show(cmd executors.Command) string {
	if cmd.Script != "" {
		return EnvPrefix(cmd.Env) + cmd.Script
	}
	return EnvPrefix(cmd.Env) + executors.QuoteArgv(cmd.Argv)
}

// Note adds a line of the kind's own to the kept output (not streamed).
func (h *Session) Note(format string, a ...any) {
	fmt.Fprintf(h.tail, format+"\n", a...)
}

// YesNo runs a yes/no probe: exit 0 is yes, exit 1 is no (firewall-cmd
// --query-*, iptables -C), anything else is an error.
func (h *Session) YesNo(ctx context.Context, cmd executors.Command) (bool, error) {
	r, err := h.Probe(ctx, cmd)
	switch {
	case err != nil:
		return false, err
	case r.OK():
		return true, nil
	case r.ExitCode == 1:
		return false, nil
	}
	return false, r.Exit
}
