package main

import (
	"context"
	"strings"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/runner"
)

func runPlan(ctx context.Context, args []string, e env) error {
	var (
		c       commonFlags
		offline bool
		sel     selection
	)
	fs := newFlagSet("plan", "plan [flags] PLAN")
	c.add(fs)
	sel.add(fs)
	fs.BoolVar(&offline, "offline", false, "render the steps without connecting to any host (no checks)")
	files, err := parseFlags(fs, args, e.stderr)
	if err != nil {
		return err
	}
	if err := oneFile("plan", files); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	p, err := loadPlan(files[0], &c, e)
	if err != nil {
		return err
	}
	var sec secret.Values
	if !offline {
		// Checks may need secrets (a login to PostgreSQL, say); an
		// offline rendering shows them masked and needs none.
		if sec, err = resolveSecrets(p, e); err != nil {
			return err
		}
	}
	r, pr, err := newRunner(p, &c, sec, e, runner.Options{Offline: offline, From: sel.from, Only: sel.only()})
	if err != nil {
		return err
	}
	_, err = r.Plan(ctx)
	return pr.shown(err)
}

// selection is --from / --only.
type selection struct {
	from   string
	onlyCS string
}

func (s *selection) add(fs interface {
	StringVar(*string, string, string, string)
}) {
	fs.StringVar(&s.from, "from", "", "start at step `ID` (earlier steps are skipped)")
	fs.StringVar(&s.onlyCS, "only", "", "run only these steps: `ID,ID,...`")
}

func (s *selection) only() []string {
	if s.onlyCS == "" {
		return nil
	}
	var ids []string
	for _, id := range strings.Split(s.onlyCS, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func oneFile(cmd string, files []string) error {
	switch len(files) {
	case 1:
		return nil
	case 0:
		return usagef("%s: no plan file given", cmd)
	default:
		return usagef("%s: one plan file at a time, got %d: %s", cmd, len(files), strings.Join(files, " "))
	}
}
