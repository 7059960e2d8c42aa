package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/migrun/migrun/steps"
)

func runSteps(ctx context.Context, args []string, e env) error {
	if len(args) > 0 {
		return usagef("steps takes no arguments")
	}
	for _, k := range steps.Builtin().Kinds() {
		fmt.Fprintf(e.stdout, "%-14s %s\n", k.Name, k.Summary)
	}
	fmt.Fprintln(e.stdout, "\nRun 'migrun doc KIND' for a kind's fields.")
	return nil
}

// runDoc documents a kind from the same schema the plan decoder enforces,
// so the documentation cannot drift from what is accepted.
func runDoc(ctx context.Context, args []string, e env) error {
	if len(args) != 1 {
		return usagef("doc: want one step kind (see 'migrun steps')")
	}
	k, ok := steps.Builtin().Lookup(args[0])
	if !ok {
		return usagef("doc: no step kind %q (see 'migrun steps')", args[0])
	}
	fmt.Fprintf(e.stdout, "%s: %s\n\n", k.Name, k.Summary)
	if k.NeedsHost {
		fmt.Fprintf(e.stdout, "Runs on the step's host: (required).\n")
	}
	if sc, ok := k.New().(steps.ScalarSpec); ok {
		fmt.Fprintf(e.stdout, "Shorthand: `%s: VALUE` sets %s.\n", k.Name, sc.ScalarField())
	}
	fmt.Fprintln(e.stdout, "\nFields:")
	printFields(e.stdout, steps.SchemaOf(k.New()), "  ")
	fmt.Fprintln(e.stdout, "\nCommon step fields: id (required), host, description, become, timeout, retries, when, point_of_no_return.")
	return nil
}

func printFields(w io.Writer, fields []steps.Field, indent string) {
	for _, f := range fields {
		var notes []string
		if f.Required {
			notes = append(notes, "required")
		}
		if len(f.Enum) > 0 {
			notes = append(notes, "one of "+strings.Join(f.Enum, ", "))
		}
		if f.Default != "" {
			notes = append(notes, "default "+f.Default)
		}
		if f.SecretAllowed {
			notes = append(notes, "may hold ${secret}")
		}
		extra := ""
		if len(notes) > 0 {
			extra = " (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintf(w, "%s%s: %s%s\n%s    %s\n", indent, f.Key, f.Type, extra, indent, f.Doc)
		if len(f.Fields) > 0 {
			printFields(w, f.Fields, indent+"    ")
		}
	}
}
