package main

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCompletions(t *testing.T) {
	planFile := filepath.Join(t.TempDir(), "p.yaml")
	if err := os.WriteFile(planFile, []byte(`version: 1
name: p
vars: {dir: /tmp/x, mode: fast}
hosts:
  here: {local: true}
steps:
  - {id: make-dir, host: here, command: "mkdir -p ${dir}"}
  - {id: done, host: here, command: "true"}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		words []string
		want  []string // all of these, in this order, among the candidates
		not   []string
	}{
		{[]string{""}, []string{"validate", "plan", "show", "apply", "status", "steps", "doc", "completion", "version"}, nil},
		{[]string{"apply", "--"}, []string{"--accept-new-host-keys", "--from", "--resume", "--var", "--yes"}, nil},
		{[]string{"validate", "-"}, []string{"--var"}, []string{"--identity", "--known-hosts"}},
		{[]string{"apply", planFile, "--var", ""}, []string{"dir=", "mode="}, nil},
		{[]string{"plan", planFile, "--from", ""}, []string{"make-dir", "done"}, nil},
		{[]string{"apply", "--yes", planFile, "--only", ""}, []string{"make-dir", "done"}, nil},
		{[]string{"plan", "--from", ""}, nil, []string{completeFiles}},
		{[]string{"plan", "--output", ""}, []string{"text", "json"}, []string{"markdown"}},
		{[]string{"show", "--output", ""}, []string{"text", "markdown", "json"}, nil},
		{[]string{"apply", ""}, []string{completeFiles}, nil},
		{[]string{"apply", "--yes", ""}, []string{completeFiles}, nil},
		{[]string{"plan", "--state-dir", ""}, []string{completeDirs}, nil},
		{[]string{"doc", ""}, []string{"command", "copy", "ovirt_he_maintenance", "pg_replicate"}, nil},
		{[]string{"completion", ""}, []string{"bash", "fish", "zsh"}, nil},
		{[]string{"help", ""}, []string{"plan", "apply"}, nil},
		{[]string{"nosuch", ""}, nil, []string{completeFiles}},
	} {
		got := completions(tt.words)
		i := 0
		for _, c := range got {
			if i < len(tt.want) && c == tt.want[i] {
				i++
			}
		}
		if i < len(tt.want) {
			t.Errorf("complete %q = %q, want %q among them in order", tt.words, got, tt.want)
		}
		for _, n := range tt.not {
			if slices.Contains(got, n) {
				t.Errorf("complete %q offers %q", tt.words, n)
			}
		}
	}
}

// completionShell runs script in a shell with this package's CLI built
// as migrun on the PATH, and returns what it printed. A shell that is not
// installed skips the test, except in CI, which installs all three.
func completionShell(t *testing.T, shell string, args ...string) string {
	t.Helper()
	path, err := exec.LookPath(shell)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed; CI must run its completion", shell)
		}
		t.Skip("no " + shell)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "migrun")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	_, script, _ := cli(t, nil, "completion", shell)
	scriptFile := filepath.Join(dir, "migrun."+shell)
	if err := os.WriteFile(scriptFile, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(path, append(args, scriptFile)...)
	cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "HOME="+dir, "XDG_CONFIG_HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", shell, err, out)
	}
	return string(out)
}

// Each shell's script, sourced by the real shell, completes through
// `migrun __complete`: a command, a flag, a step kind.
func TestCompletionScripts(t *testing.T) {
	tests := []struct {
		shell string
		args  []string
		want  []string
	}{
		{"bash", []string{"--norc", "--noprofile", "-c", `
source "$1"
COMP_WORDS=(migrun ap); COMP_CWORD=1; _migrun; echo "1:${COMPREPLY[*]}"
COMP_WORDS=(migrun apply --re); COMP_CWORD=2; _migrun; echo "2:${COMPREPLY[*]}"
COMP_WORDS=(migrun doc pg_re); COMP_CWORD=2; _migrun; echo "3:${COMPREPLY[*]}"
`, "bash"}, []string{"1:apply\n", "2:--restart --resume\n", "3:pg_replicate pg_restore\n"}},
		// zsh's completion system needs a terminal; the two functions the
		// script calls are stood in for (compadd keeps, as zsh does, the
		// candidates the word typed so far begins), the rest is zsh.
		{"zsh", []string{"-f", "-c", `
compdef() { :; }
compadd() {
	[ "$1" = -- ] && shift
	local -a m; local c
	for c in "$@"; do [[ $c == ${words[CURRENT]}* ]] && m+=($c); done
	print -r -- "$n:$m"
}
source "$1"
n=1 words=(migrun ap) CURRENT=2 _migrun
n=2 words=(migrun apply --re) CURRENT=3 _migrun
n=3 words=(migrun doc pg_re) CURRENT=3 _migrun
`, "zsh"}, []string{"1:apply\n", "2:--restart --resume\n", "3:pg_replicate pg_restore\n"}},
		{"fish", []string{"--no-config", "-c", `
source $argv[1]
complete -C "migrun ap" | string replace -r '^' '1:'
complete -C "migrun apply --re" | string replace -r '^' '2:'
complete -C "migrun doc pg_re" | string replace -r '^' '3:'
`}, []string{"1:apply\n", "2:--restart\n", "2:--resume\n", "3:pg_replicate\n", "3:pg_restore\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.shell, func(t *testing.T) {
			out := completionShell(t, tt.shell, tt.args...)
			for _, want := range tt.want {
				if !strings.Contains(out, want) {
					t.Errorf("%s completion lacks %q:\n%s", tt.shell, want, out)
				}
			}
		})
	}
}

func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if code, out, errOut := cli(t, nil, "man", dir); code != 0 {
		t.Fatalf("man: exit %d %s %s", code, out, errOut)
	}
	for _, c := range commands() {
		b, err := os.ReadFile(filepath.Join(dir, "migrun-"+c.name+".1"))
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		if !strings.HasPrefix(page, ".TH MIGRUN\\-"+strings.ToUpper(c.name)+" 1 ") || !strings.Contains(page, ".SH SYNOPSIS") {
			t.Errorf("migrun-%s.1:\n%s", c.name, page)
		}
		if c.flags == nil {
			continue
		}
		c.flags().VisitAll(func(f *flag.Flag) {
			documented := strings.Contains(page, ".B \\-\\-"+strings.ReplaceAll(f.Name, "-", "\\-"))
			if documented == slices.Contains(c.hidden, f.Name) {
				t.Errorf("migrun-%s.1: --%s documented %v, hidden %v", c.name, f.Name, documented, slices.Contains(c.hidden, f.Name))
			}
		})
	}
	main, _ := os.ReadFile(filepath.Join(dir, "migrun.1"))
	if !strings.Contains(string(main), ".SH EXIT STATUS") || !strings.Contains(string(main), "migrun\\-apply") {
		t.Errorf("migrun.1:\n%s", main)
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		out, err := exec.Command(groff, "-man", "-Tutf8", "-ww", "-P-c", "-P-b", "-P-u", filepath.Join(dir, "migrun-apply.1")).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--expect-sha256") || strings.Contains(string(out), "warning") {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}
