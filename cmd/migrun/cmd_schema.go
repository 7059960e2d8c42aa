package main

import (
	"context"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// runSchema prints the JSON Schema of the plan format, generated from the
// schema the loader enforces; plans/plan.schema.json is its output.
func runSchema(ctx context.Context, args []string, e env) error {
	fs := newFlagSet("schema", "schema")
	rest, err := parseFlags(fs, args, e)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("schema takes no arguments")
	}
	out, err := plan.JSONSchema(steps.Builtin())
	if err != nil {
		return err
	}
	_, err = e.stdout.Write(out)
	return err
}
