package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
)

// planOptions are plan's flags.
type planOptions struct {
	c        commonFlags
	offline  bool
	sel      selection
	out      string
	detailed bool
}

func (o *planOptions) flagSet() *flag.FlagSet {
	fs := newFlagSet("plan", "plan [flags] PLAN")
	o.c.add(fs)
	o.sel.add(fs)
	fs.BoolVar(&o.offline, "offline", false, "render the steps without connecting to any host (no checks)")
	fs.StringVar(&o.out, "out", "", "save the dry run as a reviewed-plan `file` for `migrun show` and `migrun apply FILE`")
	fs.BoolVar(&o.detailed, "detailed-exitcode", false, "exit 0 when nothing would change, 4 when steps would change (1 and 2 stay errors)")
	return fs
}

func runPlan(ctx context.Context, args []string, e env) error {
	var o planOptions
	files, err := parseFlags(o.flagSet(), args, e)
	if err != nil {
		return err
	}
	c, offline, sel, out, detailed := o.c, o.offline, o.sel, o.out, o.detailed
	if err := oneFile("plan", files); err != nil {
		return err
	}
	if err := c.validate(); err != nil {
		return err
	}
	if out != "" && offline {
		return usagef("--out needs the hosts' state: it cannot be combined with --offline")
	}
	p, err := loadPlan(files[0], &c, e)
	if err != nil {
		return err
	}
	var sec secret.Values
	if offline {
		// An offline rendering needs no secret: each stands in as a
		// placeholder that reaches no host (none is contacted) and is
		// shown masked, as a real value is, in the diffs that need one.
		sec = offlineSecrets(p)
	} else {
		// Checks may need secrets (a login to PostgreSQL, say).
		if sec, err = resolveSecrets(p, e); err != nil {
			return err
		}
	}
	r, pr, err := newRunner(p, &c, sec, e, runner.Options{Offline: offline, From: sel.from, Only: sel.only()})
	if err != nil {
		return err
	}
	pv, err := r.Plan(ctx)
	if err != nil {
		if out != "" {
			fmt.Fprintf(e.stderr, "migrun: %s not written: the dry run had errors\n", out)
		}
		return pr.shown(err)
	}
	if out != "" {
		if err := saveReview(r.Review(pv, version), out, e); err != nil {
			return err
		}
	}
	if detailed && pv.Pending() > 0 {
		return errChangesPending
	}
	return nil
}

// errChangesPending is --detailed-exitcode's "steps would change": exit 4.
var errChangesPending = reported{errors.New("changes pending")}

// saveReview writes a reviewed plan and prints its sha256, which an
// approval can quote and `apply --expect-sha256` checks.
func saveReview(rv *runner.Reviewed, path string, e env) error {
	data, err := rv.Marshal()
	if err != nil {
		return err
	}
	// 0644: a reviewed plan holds no secret and is meant to be shared.
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("save reviewed plan: %w", err)
	}
	sum := sha256.Sum256(data)
	fmt.Fprintf(e.stderr, "Saved the reviewed plan to %s\nsha256: %x\nApply exactly this with: migrun apply %s --expect-sha256 %x\n",
		path, sum, path, sum)
	return nil
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

// offlineSecrets gives every secret the plan uses a placeholder value,
// unlike any text a plan or a host holds.
func offlineSecrets(p *plan.Plan) secret.Values {
	var b [8]byte
	_, _ = rand.Read(b[:])
	sec := secret.Values{}
	for _, name := range p.UsedSecrets() {
		sec[name] = "migrun-offline-" + name + "-" + hex.EncodeToString(b[:])
	}
	return sec
}
