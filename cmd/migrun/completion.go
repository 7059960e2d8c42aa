package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// Shell completion: each shell's script hands the words typed so far to
// `migrun __complete WORD... CURRENT` and offers what it prints, one
// candidate per line, or completes file names itself when the first line
// is ":files" (":dirs" for directories). Commands, flags, their values,
// step kinds and, once a plan file is on the line, its vars (for --var),
// step ids (--from, --only) and hosts come from migrun itself, so the
// scripts never fall behind it.

const (
	completeFiles = ":files"
	completeDirs  = ":dirs"
)

// runCompletion prints the completion script for a shell.
func runCompletion(args []string, e env) error {
	if len(args) != 1 {
		return usagef("completion: want one shell: bash, zsh or fish")
	}
	script, ok := completionScripts[args[0]]
	if !ok {
		return usagef("completion: no script for %q; want bash, zsh or fish", args[0])
	}
	_, err := fmt.Fprint(e.stdout, script)
	return err
}

var completionScripts = map[string]string{
	"bash": `# bash completion for migrun (migrun completion bash)
_migrun() {
	local cur=${COMP_WORDS[COMP_CWORD]} out
	out=$(migrun __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return
	local IFS=$'\n'
	case $out in
	:files*) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null ;;
	:dirs*) COMPREPLY=($(compgen -d -- "$cur")); compopt -o filenames 2>/dev/null ;;
	*) COMPREPLY=($(compgen -W "$out" -- "$cur")) ;;
	esac
}
complete -F _migrun migrun
`,
	"zsh": `#compdef migrun
# zsh completion for migrun (migrun completion zsh)
_migrun() {
	local -a out
	out=("${(@f)$(migrun __complete "${(@)words[2,CURRENT]}" 2>/dev/null)}")
	case $out[1] in
	:files) _files ;;
	:dirs) _files -/ ;;
	*) compadd -- $out ;;
	esac
}
if [ "$funcstack[1]" = "_migrun" ]; then
	_migrun "$@"
else
	compdef _migrun migrun
fi
`,
	"fish": `# fish completion for migrun (migrun completion fish)
function __migrun_complete
	set -l words (commandline -opc)
	set -l out (migrun __complete $words[2..-1] (commandline -ct) 2>/dev/null)
	switch "$out[1]"
		case :files
			__fish_complete_path (commandline -ct)
		case :dirs
			__fish_complete_directories (commandline -ct)
		case '*'
			printf '%s\n' $out
	end
end
complete -c migrun -f -a '(__migrun_complete)'
`,
}

// runComplete prints the candidates for the last of args, given the
// words before it (the command line after "migrun").
func runComplete(args []string, e env) error {
	for _, c := range completions(args) {
		fmt.Fprintln(e.stdout, c)
	}
	return nil
}

// completions computes the candidates; see the package comment above.
func completions(words []string) []string {
	if len(words) == 0 {
		words = []string{""}
	}
	cur := words[len(words)-1]
	if len(words) == 1 {
		var names []string
		for _, c := range commands() {
			names = append(names, c.name)
		}
		return names
	}
	cmd, ok := lookupCommand(words[0])
	if !ok {
		return nil
	}
	var fs *flag.FlagSet
	if cmd.flags != nil {
		fs = cmd.flags()
	}
	prev := words[len(words)-2]
	if fs != nil {
		if f := flagNamed(fs, prev); f != nil && !isBoolFlag(f) {
			return flagValues(cmd, f.Name, words[1:len(words)-1])
		}
		if strings.HasPrefix(cur, "-") {
			var names []string
			fs.VisitAll(func(f *flag.Flag) {
				if !slices.Contains(cmd.hidden, f.Name) {
					names = append(names, "--"+f.Name)
				}
			})
			return names
		}
	}
	switch cmd.args {
	case "plan", "file", "path":
		return []string{completeFiles}
	case "dir":
		return []string{completeDirs}
	case "kind":
		var kinds []string
		for _, k := range steps.Builtin().Kinds() {
			kinds = append(kinds, k.Name)
		}
		return kinds
	case "command":
		return completions([]string{""})
	case "shell":
		return slices.Sorted(maps.Keys(completionScripts))
	}
	return nil
}

// flagNamed finds the flag a word names ("-x", "--x"; not "--x=v").
func flagNamed(fs *flag.FlagSet, word string) *flag.Flag {
	name := strings.TrimLeft(word, "-")
	if name == word || strings.Contains(name, "=") {
		return nil
	}
	return fs.Lookup(name)
}

func isBoolFlag(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// flagValues completes the value of flag name; words are the command's
// other words, where a plan file may be.
func flagValues(cmd command, name string, words []string) []string {
	switch name {
	case "output":
		if cmd.name == "show" {
			return []string{"text", "markdown", "json"}
		}
		return []string{"text", "json"}
	case "state-dir":
		return []string{completeDirs}
	case "known-hosts", "ssh-config", "identity", "out":
		return []string{completeFiles}
	case "var":
		p := planOnLine(words)
		if p == nil {
			return nil
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(p.Vars)) {
			out = append(out, k+"=")
		}
		return out
	case "from", "only":
		p := planOnLine(words)
		if p == nil {
			return nil
		}
		var ids []string
		for _, st := range p.Steps {
			ids = append(ids, st.ID)
		}
		return ids
	}
	return nil
}

// planOnLine loads the first word that is a plan file, quietly: nil when
// there is none or it does not load.
func planOnLine(words []string) *plan.Plan {
	for _, w := range words {
		if strings.HasPrefix(w, "-") || !(strings.HasSuffix(w, ".yaml") || strings.HasSuffix(w, ".yml")) {
			continue
		}
		if _, err := os.Stat(w); err != nil {
			continue
		}
		if p, err := plan.Load(w, steps.Builtin(), nil); err == nil {
			return p
		}
	}
	return nil
}
