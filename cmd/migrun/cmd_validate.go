package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
)

func runValidate(ctx context.Context, args []string, e env) error {
	var c commonFlags
	fs := newFlagSet("validate", "validate [flags] PLAN...")
	c.add(fs)
	files, err := parseFlags(fs, args, e.stderr)
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return usagef("validate: no plan file given")
	}
	var firstErr error
	for _, f := range files {
		p, err := loadPlan(f, &c, e)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		hosts := make([]string, 0, len(p.Hosts))
		for h := range p.Hosts {
			hosts = append(hosts, h)
		}
		sort.Strings(hosts)
		fmt.Fprintf(e.stdout, "%s: ok: plan %s, %d step(s), %d on_failure, hosts %s\n",
			f, p.Name, len(p.Steps), len(p.OnFailure), strings.Join(hosts, ", "))
	}
	return firstErr
}
