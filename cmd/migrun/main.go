// Command migrun runs declarative migration plans: ordered steps, locally
// or over SSH, with a dry run, a journal and resume.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
)

// Exit codes, documented in the README.
const (
	exitOK          = 0
	exitFailed      = 1 // a step failed (or a host could not be reached)
	exitInvalid     = 2 // invalid plan or usage
	exitRefused     = 3 // lock held, plan completed, resume refused, drift from a review, a step's check refused before any change
	exitPending     = 4 // plan --detailed-exitcode: steps would change
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	os.Exit(exitCode(err))
}

// env is the process's outside world, passed in so tests run the CLI
// in-process.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
}

// usageError is a bad command line: exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// reported wraps an error that was already shown to the user (as events
// or plan problems), so main prints nothing more.
type reported struct{ err error }

func (e reported) Error() string { return e.err.Error() }
func (e reported) Unwrap() error { return e.err }

func exitCode(err error) int {
	var (
		perrs plan.Errors
		uerr  usageError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errChangesPending):
		return exitPending
	case errors.As(err, &perrs), errors.As(err, &uerr):
		return exitInvalid
	case errors.Is(err, runner.ErrLocked), errors.Is(err, runner.ErrCompleted),
		errors.Is(err, runner.ErrUnfinished), errors.Is(err, runner.ErrPlanChanged),
		errors.Is(err, runner.ErrNothingToResume), errors.Is(err, runner.ErrRolledBack),
		errors.Is(err, runner.ErrOtherReview), errors.Is(err, errDrift),
		errors.Is(err, errReviewMismatch), errors.Is(err, errNotConfirmed),
		errors.Is(err, runner.ErrRefused), errors.Is(err, runner.ErrOtherJournal):
		return exitRefused
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	}
	return exitFailed
}

// exitStatuses explain the exit codes, for the help and the man page.
var exitStatuses = []struct {
	code int
	what string
}{
	{exitOK, "done"},
	{exitFailed, "a step failed (or a host could not be reached)"},
	{exitInvalid, "invalid plan or usage"},
	{exitRefused, "refused: lock held, plan completed, resume refused, drift from a review, a step's check refused before any change"},
	{exitPending, "changes pending (plan --detailed-exitcode)"},
	{exitInterrupted, "interrupted"},
}

// usage is the top-level help, from the command table.
func usage() string {
	var b strings.Builder
	b.WriteString("migrun runs migration plans: ordered steps on local and SSH hosts,\nwith a dry run, a journal, resume and rollback.\n\nUsage:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  migrun %-40s %s\n", c.synopsis, c.summary)
	}
	b.WriteString("\nRun 'migrun COMMAND -h' (or 'migrun help COMMAND') for a command's flags.\nExit codes:\n")
	for _, s := range exitStatuses {
		fmt.Fprintf(&b, "  %-3d %s\n", s.code, s.what)
	}
	return b.String()
}

func isHelpFlag(s string) bool { return s == "-h" || s == "-help" || s == "--help" }

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usage())
		return usagef("no command given")
	}
	cmd, rest := args[0], args[1:]
	if cmd == "help" && len(rest) == 1 {
		// migrun help COMMAND is migrun COMMAND -h.
		cmd, rest = rest[0], []string{"-h"}
	}
	if len(rest) > 0 && isHelpFlag(rest[0]) {
		// The commands without flags say what they take.
		if c, ok := lookupCommand(cmd); ok && c.flags == nil {
			fmt.Fprintf(e.stdout, "Usage: migrun %s\n\n%s\n", c.synopsis, c.summary)
			return nil
		}
	}
	var err error
	switch cmd {
	case "validate":
		err = runValidate(ctx, rest, e)
	case "plan":
		err = runPlan(ctx, rest, e)
	case "apply":
		err = runApply(ctx, rest, e)
	case "show":
		err = runShow(ctx, rest, e)
	case "status":
		err = runStatus(ctx, rest, e)
	case "report":
		err = runReport(ctx, rest, e)
	case "state":
		err = runState(ctx, rest, e)
	case "steps":
		err = runSteps(ctx, rest, e)
	case "doc":
		err = runDoc(ctx, rest, e)
	case "schema":
		err = runSchema(ctx, rest, e)
	case "completion":
		err = runCompletion(rest, e)
	case "__complete":
		err = runComplete(rest, e)
	case "man":
		err = runMan(rest, e)
	case "version", "--version", "-v":
		fmt.Fprintln(e.stdout, "migrun", versionString(version, readBuildInfo()))
	case "help", "-h", "--help":
		fmt.Fprint(e.stdout, usage())
	default:
		fmt.Fprint(e.stderr, usage())
		err = usagef("unknown command %q", cmd)
	}
	if errors.Is(err, errHelpShown) {
		return nil
	}
	var rep reported
	if err != nil && !errors.As(err, &rep) {
		fmt.Fprintln(e.stderr, "migrun:", err)
	}
	return err
}
