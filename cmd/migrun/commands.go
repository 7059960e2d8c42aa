package main

import "flag"

// command describes one migrun command for its help, its man page and
// shell completion: the flag sets are the ones the command itself parses
// with, so the three never disagree with it.
type command struct {
	name     string
	synopsis string // after "migrun "
	summary  string // one line
	// flags returns the command's flag set (nil: it takes none).
	flags func() *flag.FlagSet
	// hidden are flags it accepts but does not document.
	hidden []string
	// args is what its positional arguments are, for completion: "plan"
	// (a plan file), "file" (a reviewed plan), "path" (plans or
	// directories), "kind", "command", "shell" or "" (none).
	args string
}

// commands lists migrun's commands in the order the help gives them.
func commands() []command {
	return []command{
		{name: "validate", synopsis: "validate [flags] PLAN|DIR...", summary: "check plans without contacting any host",
			flags: func() *flag.FlagSet { return validateFlagSet(new(commonFlags)) }, hidden: sshFlags, args: "path"},
		{name: "plan", synopsis: "plan [flags] PLAN", summary: "dry run: checks and exact actions, changes nothing; --out saves a reviewed plan",
			flags: func() *flag.FlagSet { return new(planOptions).flagSet() }, args: "plan"},
		{name: "show", synopsis: "show [--output text|markdown|json] FILE", summary: "render a reviewed plan",
			flags: func() *flag.FlagSet { return showFlagSet(new(string)) }, args: "file"},
		{name: "apply", synopsis: "apply [flags] PLAN|FILE", summary: "run a plan, or exactly a reviewed plan, refusing hosts that drifted",
			flags: func() *flag.FlagSet { return new(applyOptions).flagSet() }, args: "plan"},
		{name: "status", synopsis: "status [flags] PLAN", summary: "show the journal of the last run",
			flags: func() *flag.FlagSet { return statusFlagSet(new(commonFlags), new(fleetFlags)) }, hidden: sshFlags, args: "plan"},
		{name: "report", synopsis: "report [flags] PLAN|FILE", summary: "write the last run's report: one HTML page with its timeline, verdicts and commands",
			flags: func() *flag.FlagSet { return reportFlagSet(new(commonFlags), new(string)) }, hidden: sshFlags, args: "plan"},
		{name: "state", synopsis: "state migrate --from DIR|DB --to DIR|DB [PLAN_NAME...]", summary: "copy journals between a state directory and a state database",
			flags: func() *flag.FlagSet { return new(stateOptions).flagSet() }},
		{name: "steps", synopsis: "steps", summary: "list the step kinds"},
		{name: "doc", synopsis: "doc KIND", summary: "document a step kind's fields", args: "kind"},
		{name: "schema", synopsis: "schema", summary: "print the JSON Schema of plans (for editors)",
			flags: func() *flag.FlagSet { return newFlagSet("schema", "schema") }},
		{name: "completion", synopsis: "completion bash|zsh|fish", summary: "print the shell completion script", args: "shell"},
		{name: "man", synopsis: "man DIR", summary: "write the man pages (migrun.1, migrun-COMMAND.1) into DIR", args: "dir"},
		{name: "version", synopsis: "version", summary: "print migrun's version"},
		{name: "help", synopsis: "help [COMMAND]", summary: "the help, or a command's", args: "command"},
	}
}

// lookupCommand finds a command by name.
func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}
