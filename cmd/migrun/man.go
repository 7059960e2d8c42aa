package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// runMan writes migrun's man pages into a directory: migrun.1 and one
// migrun-COMMAND.1 per command, from the same definitions as the help
// (the command table and the commands' own flag sets).
func runMan(args []string, e env) error {
	if len(args) != 1 {
		return usagef("man: want the directory to write the pages into")
	}
	dir := args[0]
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	date := manDate()
	pages := map[string]string{"migrun.1": mainManPage(date)}
	for _, c := range commands() {
		pages["migrun-"+c.name+".1"] = commandManPage(c, date)
	}
	for name, text := range pages {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(e.stdout, "wrote %d man pages into %s\n", len(pages), dir)
	return nil
}

// manDate is the pages' date, given by the build (make package sets the
// commit's date, so that the same commit makes the same pages), or none.
func manDate() string {
	return os.Getenv("MIGRUN_MAN_DATE")
}

// roff escapes text for a man page: backslashes, and dashes, which groff
// would otherwise typeset as hyphens (breaking copy and paste of flags);
// a leading dot or quote would be read as a request.
func roff(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func manHeader(name, date string) string {
	return fmt.Sprintf(".TH %s 1 %q \"migrun %s\" \"migrun manual\"\n", strings.ToUpper(roff(name)), date, roff(version))
}

func mainManPage(date string) string {
	var b strings.Builder
	b.WriteString(manHeader("migrun", date))
	b.WriteString(".SH NAME\nmigrun \\- run declarative migration plans on local and SSH hosts\n")
	b.WriteString(".SH SYNOPSIS\n.B migrun\n.I COMMAND\n[\\fIFLAGS\\fR] [\\fIARGS\\fR]\n")
	b.WriteString(".SH DESCRIPTION\n" + roff("migrun runs migration plans: ordered steps on local and SSH hosts, with a dry run, a journal, resume and rollback. A plan is YAML; 'migrun steps' lists the step kinds and 'migrun doc KIND' documents one.") + "\n")
	b.WriteString(".SH COMMANDS\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, ".TP\n.B migrun %s\n%s (see \\fBmigrun\\-%s\\fR(1))\n", roff(c.synopsis), roff(c.summary), roff(c.name))
	}
	b.WriteString(".SH EXIT STATUS\n")
	for _, s := range exitStatuses {
		fmt.Fprintf(&b, ".TP\n.B %d\n%s\n", s.code, roff(s.what))
	}
	b.WriteString(".SH SEE ALSO\n")
	var refs []string
	for _, c := range commands() {
		refs = append(refs, "\\fBmigrun\\-"+roff(c.name)+"\\fR(1)")
	}
	b.WriteString(strings.Join(refs, ", ") + "\n")
	return b.String()
}

func commandManPage(c command, date string) string {
	var b strings.Builder
	b.WriteString(manHeader("migrun-"+c.name, date))
	fmt.Fprintf(&b, ".SH NAME\nmigrun\\-%s \\- %s\n", roff(c.name), roff(c.summary))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B migrun %s\n", roff(c.synopsis))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s.\n", roff(strings.ToUpper(c.summary[:1])+c.summary[1:]))
	if c.flags != nil {
		var opts strings.Builder
		c.flags().VisitAll(func(f *flag.Flag) {
			if slices.Contains(c.hidden, f.Name) {
				return
			}
			arg, usage := flag.UnquoteUsage(f)
			fmt.Fprintf(&opts, ".TP\n.B \\-\\-%s", roff(f.Name))
			if arg != "" {
				fmt.Fprintf(&opts, " \\fI%s\\fR", roff(arg))
			}
			opts.WriteString("\n" + roff(usage))
			if f.DefValue != "" && f.DefValue != "false" {
				opts.WriteString(roff(fmt.Sprintf(" (default %s)", f.DefValue)))
			}
			opts.WriteString("\n")
		})
		if opts.Len() > 0 {
			b.WriteString(".SH OPTIONS\n" + opts.String())
		}
	}
	b.WriteString(".SH SEE ALSO\n\\fBmigrun\\fR(1)\n")
	return b.String()
}
