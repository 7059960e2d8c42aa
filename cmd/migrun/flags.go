package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strings"

	"github.com/migrun/migrun/runner"
)

// commonFlags are the flags every plan-reading command takes.
type commonFlags struct {
	vars     varFlag
	stateDir string
	state    string
	// opened is the store of --state or --state-dir, once opened.
	opened  runner.Store
	output  string
	verbose bool
	// SSH
	knownHosts  string
	acceptNew   bool
	sshConfig   string
	identity    string
	connTimeout string
}

func (c *commonFlags) add(fs *flag.FlagSet) {
	c.vars = varFlag{}
	fs.Var(&c.vars, "var", "set a plan variable: `key=value` (repeatable)")
	fs.StringVar(&c.stateDir, "state-dir", "", "journal and lock `directory` (default .migrun/ beside the plan)")
	fs.StringVar(&c.state, "state", "", "keep journals and locks in a PostgreSQL `database` instead: postgres://USER@HOST/DB, the password from PGPASSWORD or ~/.pgpass (default $"+stateEnv+")")
	fs.StringVar(&c.output, "output", "text", "output `format`: text or json (JSON lines events)")
	fs.BoolVar(&c.verbose, "v", false, "verbose: stream command output")
	fs.StringVar(&c.knownHosts, "known-hosts", "", "known_hosts `file` to check and record host keys in (default: ssh_config's UserKnownHostsFile, ~/.ssh/known_hosts; the global files are read too)")
	fs.BoolVar(&c.acceptNew, "accept-new-host-keys", false, "trust and record the keys of hosts not yet in known_hosts (a changed key is always refused)")
	fs.StringVar(&c.sshConfig, "ssh-config", "", "the one ssh_config `file` to read, as ssh -F (default ~/.ssh/config, then /etc/ssh/ssh_config; \"none\" to read none)")
	fs.StringVar(&c.identity, "identity", "", "private key `file` to offer to every SSH host, before the agent's keys")
	fs.StringVar(&c.connTimeout, "connect-timeout", "15s", "SSH connect and handshake `timeout`")
}

func (c *commonFlags) validate() error {
	if c.output != "text" && c.output != "json" {
		return usagef("--output must be text or json, not %q", c.output)
	}
	if c.state != "" && c.stateDir != "" {
		return usagef("--state and --state-dir name two places for the journal: give one")
	}
	return nil
}

// varFlag collects --var key=value.
type varFlag map[string]string

func (v varFlag) String() string { return "" }

func (v varFlag) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want key=value, got %q", s)
	}
	if _, dup := v[k]; dup {
		return fmt.Errorf("variable %q given twice", k)
	}
	v[k] = val
	return nil
}

// parseFlags parses flags given before or after the positional arguments
// ("migrun apply plan.yaml --yes" works like "migrun apply --yes plan.yaml").
func parseFlags(fs *flag.FlagSet, args []string, e env) ([]string, error) {
	// The flag package prints a parse error and the usage to its output:
	// held back, so that -h prints the usage alone on standard output
	// (asked-for help is not an error) and a mistake goes to stderr.
	var held bytes.Buffer
	fs.SetOutput(&held)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(e.stdout)
				fs.Usage()
				return nil, errHelpShown
			}
			e.stderr.Write(held.Bytes())
			return nil, reported{usagef("%v", err)}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// errHelpShown: the help a command was asked for is on standard output;
// the command did nothing else, successfully.
var errHelpShown = errors.New("help shown")

// newFlagSet makes a command's flag set. The flags the command table says
// the command hides are accepted but left out of its usage.
func newFlagSet(name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: migrun %s\n\nFlags:\n", synopsis)
		c, _ := lookupCommand(name)
		hidden := c.hidden
		shown := flag.NewFlagSet(name, flag.ContinueOnError)
		shown.SetOutput(fs.Output())
		fs.VisitAll(func(f *flag.Flag) {
			if !slices.Contains(hidden, f.Name) {
				shown.Var(f.Value, f.Name, f.Usage)
				shown.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		shown.PrintDefaults()
	}
	return fs
}

// sshFlags are the SSH settings every plan-reading command takes. The
// commands that contact no host (validate, status) accept them, so that
// one set of flags works for every command, but do not list them.
var sshFlags = []string{"known-hosts", "accept-new-host-keys", "ssh-config", "identity", "connect-timeout"}
