package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"regexp"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/textedit"
)

var commandKind = Kind{
	Name:      "command",
	Summary:   "run a command or a shell script on a host",
	NeedsHost: true,
	New:       func() Spec { return new(Command) },
}

var (
	_ Spec       = (*Command)(nil)
	_ ScalarSpec = (*Command)(nil)
)

// Command runs one process on the step's host, as the step's `become:`
// user when given.
//
// Secrets reach the process only through stdin or through a script file
// readable by its owner alone: argv, env and dir are visible to every user
// of the host (ps, /proc), so the executors refuse secrets there.
type Command struct {
	Argv    []string          `yaml:"argv" doc:"the program and its arguments, run directly without a shell (exactly one of argv and script)"`
	Script  string            `yaml:"script" secret:"allowed" doc:"a POSIX shell script run by sh; one holding secrets is written to a 0600 temporary file on the host, run with sh FILE and removed after. The shorthand command: \"TEXT\" sets it"`
	Stdin   string            `yaml:"stdin" secret:"allowed" doc:"text fed to the command's standard input: the place for passwords"`
	Env     map[string]string `yaml:"env" doc:"environment variables to add (never secrets: they show in ps)"`
	Dir     string            `yaml:"dir" doc:"absolute working directory (default: the login directory)"`
	Creates string            `yaml:"creates" doc:"absolute path the command creates: when it exists the step is already done"`
	Unless  string            `yaml:"unless" doc:"shell command run read-only before the step (with its become, env and dir): exit status 0 means already done"`
}

// ScalarField makes `command: "systemctl stop x"` a script.
func (c *Command) ScalarField() string { return "script" }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks what the tags cannot: exactly one of argv and script,
// absolute paths, usable variable names.
func (c *Command) Validate() []Problem {
	var ps []Problem
	switch {
	case len(c.Argv) > 0 && c.Script != "":
		ps = append(ps, Problem{"script", "give argv or script, not both"})
	case len(c.Argv) == 0 && c.Script == "":
		ps = append(ps, Problem{"", "give the command as argv: [...] or script: \"...\""})
	case len(c.Argv) > 0 && c.Argv[0] == "":
		ps = append(ps, Problem{"argv", "the program (argv's first word) is empty"})
	}
	if c.Script != "" && strings.TrimSpace(c.Script) == "" {
		ps = append(ps, Problem{"script", "the script is blank"})
	}
	for _, k := range hostcmd.SortedKeys(c.Env) {
		if !envName.MatchString(k) {
			ps = append(ps, Problem{"env", fmt.Sprintf("%q is not a variable name (letters, digits, _; not starting with a digit)", k)})
		}
	}
	// Relative paths would resolve against whatever the login directory
	// of the host (or the become user) is: say where, always.
	if c.Dir != "" && !path.IsAbs(c.Dir) {
		ps = append(ps, Problem{"dir", fmt.Sprintf("%q is not an absolute path", c.Dir)})
	}
	if c.Creates != "" && !path.IsAbs(c.Creates) {
		ps = append(ps, Problem{"creates", fmt.Sprintf("%q is not an absolute path", c.Creates)})
	}
	if c.Unless != "" && strings.TrimSpace(c.Unless) == "" {
		ps = append(ps, Problem{"unless", "the command is blank"})
	}
	return ps
}

// Hosts is the step's host: a command runs on exactly one.
func (c *Command) Hosts(stepHost string) []string { return []string{stepHost} }

// Check asks creates and unless, in that order (a stat is cheaper than a
// process); either one saying "done" is enough. Without them the step is
// never done: the command runs every time.
func (c *Command) Check(ctx context.Context, rt *Runtime) (Check, error) {
	if c.Creates == "" && c.Unless == "" {
		return Check{Reason: "no check: runs every time"}, nil
	}
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	var why []string
	if c.Creates != "" {
		_, err := ex.Stat(ctx, c.Creates)
		switch {
		case err == nil:
			return Check{Done: true, Reason: c.Creates + " exists"}, nil
		case errors.Is(err, fs.ErrNotExist):
			why = append(why, c.Creates+" does not exist")
		default:
			return Check{}, fmt.Errorf("creates: %w", err)
		}
	}
	if c.Unless != "" {
		// A dir made by an earlier step is missing in a dry run; the
		// probe could not even start there.
		if c.Dir != "" {
			if _, err := ex.Stat(ctx, c.Dir); errors.Is(err, fs.ErrNotExist) {
				why = append(why, "dir "+c.Dir+" does not exist yet, so unless cannot run")
				return Check{Unknown: true, Reason: strings.Join(why, "; ")}, nil
			}
		}
		_, err := ex.Run(ctx, executors.Command{
			Script:   c.Unless,
			Env:      c.Env,
			Dir:      c.Dir,
			Become:   rt.Become,
			ReadOnly: true,
		})
		var exit *executors.ExitError
		switch {
		case err == nil:
			return Check{Done: true, Reason: "unless `" + hostcmd.OneLine(c.Unless) + "` exited 0"}, nil
		case errors.As(err, &exit):
			why = append(why, fmt.Sprintf("unless `%s` exited %d", hostcmd.OneLine(c.Unless), exit.ExitCode))
		default:
			return Check{}, fmt.Errorf("unless: %w", err)
		}
	}
	return Check{Reason: strings.Join(why, "; ")}, nil
}

// scriptFileGlob stands for the random name in the dry run.
const scriptFileGlob = secretFilePattern + ".sh"

// Describe renders the command as a shell line, secret references masked.
// A multi-line script does not fit the one-line summary; it follows as
// the diff of a new file, which is what it is when it holds secrets.
func (c *Command) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	where := "run on " + rt.Host
	if rt.Become != "" {
		where += " as " + rt.Become
	}
	var line, diff string
	switch {
	case c.Script != "" && secret.Contains(c.Script):
		// The glob stays bare: it stands for one name, it is not quoted text.
		line = c.shellLine("sh "+scriptFileGlob, false) +
			" (the script below holds " + describeSecrets(c.Script) + ": written to a 0600 file, removed after)"
		diff = textedit.UnifiedDiff(scriptFileGlob, "", secret.Mask(c.Script))
	case c.Script != "" && strings.Contains(strings.TrimRight(c.Script, "\n"), "\n"):
		n := strings.Count(strings.TrimRight(c.Script, "\n"), "\n") + 1
		line = c.shellLine(fmt.Sprintf("sh -c <script below, %d lines>", n), false)
		diff = textedit.UnifiedDiff("script", "", secret.Mask(c.Script))
	case c.Script != "":
		line = c.shellLine(strings.TrimRight(c.Script, "\n"), true)
	default:
		line = c.shellLine(executors.QuoteArgv(c.Argv), false)
	}
	if c.Stdin != "" {
		line += " (stdin: " + describeStdin(c.Stdin) + ")"
	}
	return []Action{{Host: rt.Host, Summary: where + ": " + secret.Mask(line), Diff: diff}}, nil
}

// shellLine renders the command as a person would type it: the directory
// and the environment, then cmd, which is already shell text. A plain
// script with env is shown wrapped in sh -c, since its variables are set
// for the whole script, not just its first command.
func (c *Command) shellLine(cmd string, plainScript bool) string {
	var b strings.Builder
	if c.Dir != "" {
		b.WriteString("cd " + executors.Quote(c.Dir) + " && ")
	}
	for _, k := range hostcmd.SortedKeys(c.Env) {
		b.WriteString(k + "=" + executors.Quote(c.Env[k]) + " ")
	}
	if plainScript && len(c.Env) > 0 {
		cmd = "sh -c " + executors.Quote(cmd)
	}
	b.WriteString(cmd)
	return b.String()
}

// describeStdin says how much stdin there is and which secrets it holds,
// never what it says.
func describeStdin(s string) string {
	n := strings.Count(s, "\n")
	if !strings.HasSuffix(s, "\n") {
		n++
	}
	d := hostcmd.Plural(n, "line", "lines")
	if secret.Contains(s) {
		d += ", " + describeSecrets(s)
	}
	return d
}

// describeSecrets names the secrets s refers to: "secret db_pw".
func describeSecrets(s string) string {
	names := secret.Names(s)
	if len(names) == 1 {
		return "secret " + names[0]
	}
	return "secrets " + strings.Join(names, ", ")
}

// outputTail bounds the command output kept in the journal.

// Apply runs the command, streaming its output (redacted) to rt.Output.
func (c *Command) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, c.wrap(rt, err)
	}
	cmd := executors.Command{Argv: c.Argv, Env: c.Env, Dir: c.Dir, Become: rt.Become}
	if c.Stdin != "" {
		stdin, err := rt.Secrets.Reveal(c.Stdin)
		if err != nil {
			return Outcome{}, c.wrap(rt, fmt.Errorf("stdin: %w", err))
		}
		cmd.Stdin, cmd.SecretStdin = strings.NewReader(stdin), secret.Contains(c.Stdin)
	}

	out := rt.Output
	if out == nil {
		out = io.Discard
	}
	red := rt.Secrets.Writer(out)
	// Keep twice the tail and cut after redacting: cutting first could
	// leave the end of a secret value that no longer matches as a whole.
	tail := executors.NewTail(2 * outputTail)
	w := io.MultiWriter(red, tail)
	cmd.Stdout, cmd.Stderr = w, w

	runErr := c.run(ctx, rt, ex, cmd, w)
	red.Flush()
	// Changed even on failure: the command may have done part of its work.
	o := Outcome{Changed: true, Output: executors.LastBytes(rt.Secrets.Redact(secret.Mask(tail.String())), outputTail)}
	if runErr != nil {
		return o, c.wrap(rt, runErr)
	}
	return o, nil
}

// run runs cmd, shipping a script that holds secrets as a file first.
// Messages of its own go to w, with the command's output.
func (c *Command) run(ctx context.Context, rt *Runtime, ex executors.Executor, cmd executors.Command, w io.Writer) error {
	if c.Script == "" {
		_, err := ex.Run(ctx, cmd)
		return err
	}
	if !secret.Contains(c.Script) {
		cmd.Script = c.Script
		_, err := ex.Run(ctx, cmd)
		return err
	}
	file, err := c.shipScript(ctx, rt, ex)
	if err != nil {
		return err
	}
	cmd.Argv = []string{"sh", file}
	_, err = ex.Run(ctx, cmd)
	if rerr := removeSecretFile(ctx, ex, file); rerr != nil {
		// The command ran: failing the step for this would run it again
		// on resume. Tell the user loudly instead.
		fmt.Fprintf(w, "migrun: warning: could not remove %s:%s, which holds secrets: %v\n", ex.Name(), file, rerr)
	}
	return err
}

// shipScript writes the script, secrets revealed, to a 0600 file that
// the user the script runs as owns (with mode 0600 nobody else can read
// it, the login user included), and returns its path.
func (c *Command) shipScript(ctx context.Context, rt *Runtime, ex executors.Executor) (string, error) {
	text, err := rt.Secrets.Reveal(c.Script)
	if err != nil {
		return "", fmt.Errorf("script: %w", err)
	}
	file, err := writeSecretFile(ctx, ex, text, rt.Become, ".sh")
	if err != nil {
		return "", fmt.Errorf("script file: %w", err)
	}
	return file, nil
}

// wrap adds the step's context to an error. An *executors.ExitError stays
// reachable with errors.As: callers tell a failed command from a lost
// connection by it.
func (c *Command) wrap(rt *Runtime, err error) error {
	where := rt.Host
	if rt.Become != "" {
		where += " as " + rt.Become
	}
	return &WhereError{Where: "run on " + where, Err: err}
}
