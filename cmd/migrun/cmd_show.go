package main

import (
	"context"
	"crypto/sha256"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/migrun/migrun/runner"
)

// showFlagSet is show's flags.
func showFlagSet(output *string) *flag.FlagSet {
	fs := newFlagSet("show", "show [--output text|markdown|json] FILE")
	fs.StringVar(output, "output", "text", "`format`: text, markdown (for a pull request or a change ticket) or json")
	return fs
}

func runShow(ctx context.Context, args []string, e env) error {
	var output string
	files, err := parseFlags(showFlagSet(&output), args, e)
	if err != nil {
		return err
	}
	if len(files) != 1 {
		return usagef("show: one reviewed-plan file, got %d", len(files))
	}
	data, err := os.ReadFile(files[0])
	if err != nil {
		return err
	}
	rv, err := runner.ParseReviewed(data)
	if err != nil {
		return usagef("%s: %v", files[0], err)
	}
	sha := fmt.Sprintf("%x", sha256.Sum256(data))
	switch output {
	case "text":
		showText(e.stdout, rv, files[0], sha)
	case "markdown":
		showMarkdown(e.stdout, rv, files[0], sha)
	case "json":
		_, err = e.stdout.Write(data)
	default:
		return usagef("--output must be text, markdown or json, not %q", output)
	}
	return err
}

func varsLine(vars map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(vars)) {
		parts = append(parts, k+"="+vars[k])
	}
	return strings.Join(parts, " ")
}

func showText(w io.Writer, rv *runner.Reviewed, file, sha string) {
	fmt.Fprintf(w, "Reviewed plan %s (%s)\n", rv.Plan.Name, file)
	fmt.Fprintf(w, "  sha256     %s\n", sha)
	fmt.Fprintf(w, "  plan       %s (digest %s)\n", rv.Plan.File, rv.Plan.Digest[:12])
	fmt.Fprintf(w, "  made       %s by %s@%s with migrun %s\n", rv.Created.At.Format("2006-01-02 15:04:05Z07:00"),
		rv.Created.User, rv.Created.Workstation, rv.Created.Migrun)
	for _, h := range slices.Sorted(maps.Keys(rv.Hosts)) {
		fmt.Fprintf(w, "  host       %s = %s\n", h, rv.Hosts[h])
	}
	if len(rv.Vars) > 0 {
		fmt.Fprintf(w, "  variables  %s\n", varsLine(rv.Vars))
	}
	if len(rv.Secrets) > 0 {
		fmt.Fprintf(w, "  secrets    %s (asked for at apply time)\n", strings.Join(rv.Secrets, ", "))
	}
	fmt.Fprintf(w, "\n%d step(s) would change.\n\n", rv.Pending)
	show := func(prefix string, s runner.ReviewedStep) {
		fmt.Fprintf(w, "%s %s%s [%s] on %s: %s\n", bullet(s.Status), prefix, s.ID, s.Kind, s.Host, s.Status)
		if s.Description != "" {
			fmt.Fprintf(w, "    # %s\n", s.Description)
		}
		if s.Reason != "" {
			fmt.Fprintf(w, "    %s\n", s.Reason)
		}
		if s.PointOfNoReturn {
			fmt.Fprintf(w, "    %s\n", pointOfNoReturnNote)
		}
		if s.KnownAfter != "" && s.Status == runner.PreviewLater {
			fmt.Fprintf(w, "    (known after %s, which changes this host first: shown as of the review)\n", s.KnownAfter)
		}
		for _, a := range s.Actions {
			fmt.Fprintf(w, "    %s\n", a.Summary)
			for _, l := range diffLines(a.Diff) {
				fmt.Fprintf(w, "      %s\n", l)
			}
		}
		if s.Error != "" {
			fmt.Fprintf(w, "    error: %s\n", s.Error)
		}
		if n := len(s.Facts); n > 0 {
			fmt.Fprintf(w, "    read %d fact(s): %s\n", n, factHosts(s))
		}
		fmt.Fprintln(w)
	}
	for _, s := range rv.Steps {
		show("", s)
	}
	for _, s := range rv.OnFailure {
		show("on_failure ", s)
	}
	fmt.Fprintf(w, "Apply exactly this with: migrun apply %s --expect-sha256 %s\n", file, sha)
}

func diffLines(d string) []string {
	if d == "" {
		return nil
	}
	return strings.Split(strings.TrimRight(d, "\n"), "\n")
}

// factHosts summarises what a step read: "2 on db, 1 on engine".
func factHosts(s runner.ReviewedStep) string {
	count := map[string]int{}
	for _, f := range s.Facts {
		count[f.Host]++
	}
	var parts []string
	for _, h := range slices.Sorted(maps.Keys(count)) {
		parts = append(parts, fmt.Sprintf("%d on %s", count[h], h))
	}
	return strings.Join(parts, ", ")
}

// showMarkdown renders a compact document for a pull request or a change
// ticket: a summary table, then one section per host with its steps in
// plan order, diffs folded in <details>.
func showMarkdown(w io.Writer, rv *runner.Reviewed, file, sha string) {
	fmt.Fprintf(w, "### migrun reviewed plan `%s`: %d step(s) would change\n\n", rv.Plan.Name, rv.Pending)
	fmt.Fprintf(w, "| | |\n|---|---|\n")
	fmt.Fprintf(w, "| file | `%s` |\n| sha256 | `%s` |\n", file, sha)
	fmt.Fprintf(w, "| plan | `%s` (digest `%s`) |\n", rv.Plan.File, rv.Plan.Digest[:12])
	fmt.Fprintf(w, "| made | %s by `%s@%s`, migrun %s |\n", rv.Created.At.Format("2006-01-02 15:04Z07:00"),
		rv.Created.User, rv.Created.Workstation, rv.Created.Migrun)
	if len(rv.Vars) > 0 {
		fmt.Fprintf(w, "| variables | `%s` |\n", mdCell(varsLine(rv.Vars)))
	}
	if len(rv.Secrets) > 0 {
		fmt.Fprintf(w, "| secrets | %s (by name; asked for at apply time) |\n", strings.Join(rv.Secrets, ", "))
	}
	fmt.Fprintln(w)

	type item struct {
		n int
		s runner.ReviewedStep
	}
	var order []string
	byHost := map[string][]item{}
	for i, s := range rv.Steps {
		if _, ok := byHost[s.Host]; !ok {
			order = append(order, s.Host)
		}
		byHost[s.Host] = append(byHost[s.Host], item{i + 1, s})
	}
	for _, h := range order {
		addr := rv.Hosts[h]
		if addr != "" {
			addr = " (`" + addr + "`)"
		}
		fmt.Fprintf(w, "#### %s%s\n\n", h, addr)
		for _, it := range byHost[h] {
			mdStep(w, fmt.Sprintf("%d/%d", it.n, len(rv.Steps)), it.s)
		}
		fmt.Fprintln(w)
	}
	if len(rv.OnFailure) > 0 {
		fmt.Fprintf(w, "#### on_failure (only if a step fails)\n\n")
		for _, s := range rv.OnFailure {
			mdStep(w, "rollback", s)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "Apply exactly this: `migrun apply %s --expect-sha256 %s`\n", file, sha)
}

func mdStep(w io.Writer, n string, s runner.ReviewedStep) {
	fmt.Fprintf(w, "- %s **%s** `%s`: **%s**", n, s.ID, s.Kind, s.Status)
	if s.KnownAfter != "" && s.Status == runner.PreviewLater {
		fmt.Fprintf(w, " (known after `%s`)", s.KnownAfter)
	}
	if s.Reason != "" {
		fmt.Fprintf(w, ": %s", mdCell(s.Reason))
	}
	fmt.Fprintln(w)
	if s.Description != "" {
		fmt.Fprintf(w, "  <br>_%s_\n", mdCell(s.Description))
	}
	if s.PointOfNoReturn {
		fmt.Fprintf(w, "  <br>**%s**\n", pointOfNoReturnNote)
	}
	for _, a := range s.Actions {
		if a.Diff == "" {
			fmt.Fprintf(w, "  - `%s`\n", mdCode(a.Summary))
			continue
		}
		fmt.Fprintf(w, "  - <details><summary>%s</summary>\n\n    ```diff\n", htmlEscape(a.Summary))
		for _, l := range diffLines(a.Diff) {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintf(w, "    ```\n    </details>\n")
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  - error: %s\n", mdCell(s.Error))
	}
}

func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

func mdCode(s string) string { return strings.ReplaceAll(s, "`", "'") }

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
