package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
	"golang.org/x/term"
)

// loadPlan loads and validates a plan, printing every problem at once.
func loadPlan(path string, c *commonFlags, e env) (*plan.Plan, error) {
	p, err := plan.Load(path, steps.Builtin(), c.vars)
	if err != nil {
		var perrs plan.Errors
		if errors.As(err, &perrs) {
			for _, pe := range perrs {
				fmt.Fprintln(e.stderr, pe)
			}
			fmt.Fprintf(e.stderr, "%s: %d problem(s); nothing was contacted or changed\n", path, len(perrs))
			return nil, reported{err}
		}
		return nil, err
	}
	return p, nil
}

// resolveSecrets reads the secrets the plan uses, prompting on the
// terminal for `prompt:` sources.
func resolveSecrets(p *plan.Plan, e env) (secret.Values, error) {
	return p.ResolveSecrets(e.getenv, terminalPrompter(e))
}

// terminalPrompter asks on /dev/tty without echo; nil when there is no
// terminal, so the plan loader can say which secret needs one.
func terminalPrompter(e env) plan.Prompter {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil
	}
	tty.Close()
	// Hosts connect concurrently: one question on the terminal at a time.
	var mu sync.Mutex
	return func(prompt string) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return "", err
		}
		defer tty.Close()
		// Plans write prompts as they like ("Password", "Password: ").
		fmt.Fprintf(tty, "%s: ", strings.TrimRight(strings.TrimSpace(prompt), ":"))
		b, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		return string(b), err
	}
}

func isTerminal(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// newRunner wires a runner to the CLI's output, connector and flags.
// The printer tells whether the run's outcome was already shown.
func newRunner(p *plan.Plan, c *commonFlags, sec secret.Values, e env, opts runner.Options) (*runner.Runner, *eventPrinter, error) {
	conn, err := newConnector(c, e)
	if err != nil {
		return nil, nil, err
	}
	pr := &eventPrinter{w: e.stdout, json: c.output == "json", total: len(p.Steps)}
	if c.output == "text" && isTerminal(e.stderr) {
		pr.progress = &termProgress{w: e.stderr, now: time.Now}
		opts.Progress = pr.progress
	}
	if opts.State, err = c.store(context.Background(), p, e); err != nil {
		return nil, nil, err
	}
	opts.Events = pr.event
	if c.verbose && c.output == "text" {
		opts.Output = sec.Writer(prefixWriter{w: e.stderr, prefix: "      | "})
	}
	return runner.New(p, conn.connect, sec, opts), pr, nil
}

func newConnector(c *commonFlags, e env) (connector, error) {
	timeout, err := time.ParseDuration(c.connTimeout)
	if err != nil || timeout <= 0 {
		return connector{}, usagef("--connect-timeout: want a duration like 15s, got %q", c.connTimeout)
	}
	return connector{flags: c, timeout: timeout, e: e}, nil
}

// connector opens executors for plan hosts.
type connector struct {
	flags   *commonFlags
	timeout time.Duration
	e       env
}

func (c connector) connect(ctx context.Context, h plan.Host) (executors.Executor, error) {
	if h.Local {
		return executors.NewLocal(h.Name), nil
	}
	cfg := executors.SSHConfig{
		Name:              h.Name,
		Address:           h.Address,
		User:              h.User,
		Port:              h.Port,
		Jump:              h.Jump,
		BecomeMethod:      h.Become,
		KnownHostsFile:    c.flags.knownHosts,
		AcceptNewHostKeys: c.flags.acceptNew,
		SSHConfigFile:     c.flags.sshConfig,
		ConnectTimeout:    c.timeout,
	}
	if h.IdentityFile != "" {
		cfg.IdentityFiles = append(cfg.IdentityFiles, h.IdentityFile)
	}
	if c.flags.identity != "" {
		cfg.IdentityFiles = append(cfg.IdentityFiles, c.flags.identity)
	}
	for hop, key := range h.JumpIdentityFiles {
		if cfg.JumpIdentityFiles == nil {
			cfg.JumpIdentityFiles = map[string][]string{}
		}
		cfg.JumpIdentityFiles[hop] = []string{key}
	}
	if p := terminalPrompter(c.e); p != nil {
		cfg.PassphrasePrompt = func(keyFile string) ([]byte, error) {
			s, err := p("Passphrase for " + keyFile)
			return []byte(s), err
		}
	}
	return executors.DialSSH(ctx, cfg)
}
