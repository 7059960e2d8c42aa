package steps

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var packageKind = Kind{
	Name:      "package",
	Summary:   "install or remove packages with dnf, yum or apt-get",
	NeedsHost: true,
	New:       func() Spec { return new(Package) },
}

var _ Spec = (*Package)(nil)

// Package installs or removes distribution packages with whichever of dnf,
// yum and apt-get the host has, touching only the packages not already in
// the wanted state.
type Package struct {
	Names []string `yaml:"names" required:"true" doc:"package names, e.g. [postgresql-server, postgresql-contrib]"`
	State string   `yaml:"state" enum:"present|absent" default:"present" doc:"present installs the packages missing, absent removes the ones installed"`
}

// packageName is what both rpm and dpkg accept as a name, plus the .arch
// suffix of rpm (glibc.i686). A leading '-' would read as an option.
var packageName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// Validate checks every name.
func (p *Package) Validate() []Problem {
	var ps []Problem
	seen := map[string]bool{}
	for _, n := range p.Names {
		switch {
		case !packageName.MatchString(n):
			ps = append(ps, Problem{"names", fmt.Sprintf("%q is not a package name (letters, digits and _.+-, not starting with - or .)", n)})
		case seen[n]:
			ps = append(ps, Problem{"names", fmt.Sprintf("%q is listed twice", n)})
		}
		seen[n] = true
	}
	return ps
}

// Hosts is the step's host.
func (p *Package) Hosts(stepHost string) []string { return []string{stepHost} }

func (p *Package) absent() bool { return p.State == "absent" }

// packagePlan is the packages' state on the host and the command that
// would change it (nil when nothing needs to).
type packagePlan struct {
	manager string   // dnf, yum or apt-get
	change  []string // the names to install or remove
	cmd     *hostcmd.Cmd
	reason  string
}

// Check asks the package database (rpm or dpkg) which packages are there.
func (p *Package) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, p.what())
	if err != nil {
		return Check{}, err
	}
	pl, err := p.plan(ctx, h)
	if err != nil {
		return Check{}, h.wrap(err)
	}
	return Check{Done: pl.cmd == nil, Reason: pl.reason}, nil
}

// Describe names the command and exactly the packages it would change.
func (p *Package) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	h, err := openHost(ctx, rt, p.what())
	if err != nil {
		return []Action{{Host: rt.Host, Summary: p.intent()}}, err
	}
	pl, err := p.plan(ctx, h)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: p.intent()}}, h.wrap(err)
	}
	if pl.cmd == nil {
		return nil, nil
	}
	return []Action{h.action(*pl.cmd)}, nil
}

// Apply installs (or removes) the packages not yet so, then asks the
// package database again: yum exits 0 when a name matches no package.
func (p *Package) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	h, err := openHost(ctx, rt, p.what())
	if err != nil {
		return Outcome{}, err
	}
	pl, err := p.plan(ctx, h)
	if err != nil {
		return Outcome{}, h.wrap(err)
	}
	if pl.cmd == nil {
		return h.outcome(false), nil
	}
	if err := h.Run(ctx, *pl.cmd); err != nil {
		return h.outcome(true), h.wrap(err)
	}
	installed, missing, err := p.query(ctx, h, pl.manager)
	if err != nil {
		return h.outcome(true), h.wrap(err)
	}
	if p.absent() && len(installed) > 0 {
		return h.outcome(true), h.wrap(fmt.Errorf("%s exited 0 but %s still installed", pl.manager, strings.Join(installed, ", ")))
	}
	if !p.absent() && len(missing) > 0 {
		return h.outcome(true), h.wrap(fmt.Errorf("%s exited 0 but %s not installed (is the name right, is the repository enabled?)",
			pl.manager, strings.Join(missing, ", ")))
	}
	return h.outcome(true), nil
}

func (p *Package) what() string {
	if p.absent() {
		return "remove packages " + strings.Join(p.Names, " ")
	}
	return "install packages " + strings.Join(p.Names, " ")
}

func (p *Package) intent() string {
	return p.what() + " (with dnf, yum or apt-get, whichever the host has)"
}

// plan finds the package manager and the packages to change.
func (p *Package) plan(ctx context.Context, h *hostSession) (*packagePlan, error) {
	mgr, err := h.First(ctx, "dnf", "yum", "apt-get")
	if err != nil {
		return nil, err
	}
	if mgr == "" {
		return nil, errors.New("none of dnf, yum and apt-get found")
	}
	installed, missing, err := p.query(ctx, h, mgr)
	if err != nil {
		return nil, err
	}
	pl := &packagePlan{manager: mgr}
	var argv []string
	var note string
	if p.absent() {
		pl.change = installed
		argv = []string{mgr, "remove", "-y"}
		pl.reason = packageReason("installed", installed, "not installed", missing)
		note = packageReason("already not installed", missing, "", nil)
	} else {
		pl.change = missing
		argv = []string{mgr, "install", "-y"}
		pl.reason = packageReason("not installed", missing, "installed", installed)
		note = packageReason("already installed", installed, "", nil)
	}
	if len(pl.change) == 0 {
		return pl, nil
	}
	cmd := executors.Command{Argv: append(argv, pl.change...)}
	if mgr == "apt-get" {
		// debconf would ask questions on a terminal nobody watches.
		cmd.Argv = slices.Insert(cmd.Argv, 3, "-q")
		cmd.Env = map[string]string{"DEBIAN_FRONTEND": "noninteractive"}
	}
	pl.cmd = &hostcmd.Cmd{Cmd: cmd, Note: note}
	return pl, nil
}

// packageReason renders "not installed: a, b; installed: c".
func packageReason(firstLabel string, first []string, secondLabel string, second []string) string {
	var parts []string
	if len(first) > 0 {
		parts = append(parts, firstLabel+": "+strings.Join(first, ", "))
	}
	if len(second) > 0 {
		parts = append(parts, secondLabel+": "+strings.Join(second, ", "))
	}
	return strings.Join(parts, "; ")
}

// query splits the names into installed and missing, in the plan's order.
func (p *Package) query(ctx context.Context, h *hostSession, mgr string) (installed, missing []string, err error) {
	var present map[string]bool
	if mgr == "apt-get" {
		present, err = p.queryDpkg(ctx, h)
	} else {
		present, err = p.queryRPM(ctx, h)
	}
	if err != nil {
		return nil, nil, err
	}
	for _, n := range p.Names {
		if present[n] {
			installed = append(installed, n)
		} else {
			missing = append(missing, n)
		}
	}
	return installed, missing, nil
}

// queryRPM runs rpm -q on every name at once. rpm prints "package NAME is
// not installed" for each missing one and exits with their count.
func (p *Package) queryRPM(ctx context.Context, h *hostSession) (map[string]bool, error) {
	r, err := h.Probe(ctx, executors.Command{Argv: append([]string{"rpm", "-q"}, p.Names...)})
	if err != nil {
		return nil, err
	}
	notInstalled := map[string]bool{}
	for line := range strings.Lines(string(r.Stdout)) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "package "); ok {
			if n, ok := strings.CutSuffix(n, " is not installed"); ok {
				notInstalled[n] = true
			}
		}
	}
	if !r.OK() && len(notInstalled) == 0 {
		// Not the "missing packages" answer: rpm itself failed.
		return nil, fmt.Errorf("rpm -q: %w", r.Exit)
	}
	present := map[string]bool{}
	for _, n := range p.Names {
		present[n] = !notInstalled[n]
	}
	return present, nil
}

// queryDpkg asks dpkg-query for every name at once. A package is
// installed when its status is "<want> ok installed": a removed one whose
// configuration files remain is "deinstall ok config-files". Names dpkg
// has never heard of are missing from the output (and make it exit 1).
func (p *Package) queryDpkg(ctx context.Context, h *hostSession) (map[string]bool, error) {
	argv := append([]string{"dpkg-query", "-W", "-f", "${Package} ${Status}\\n"}, p.Names...)
	r, err := h.Probe(ctx, executors.Command{Argv: argv})
	if err != nil {
		return nil, err
	}
	if !r.OK() && !strings.Contains(string(r.Stderr), "no packages found") {
		return nil, fmt.Errorf("dpkg-query: %w", r.Exit)
	}
	present := map[string]bool{}
	for line := range strings.Lines(string(r.Stdout)) {
		f := strings.Fields(line)
		// One line per installed architecture: any one will do.
		if len(f) == 4 && f[3] == "installed" {
			present[f[0]] = true
		}
	}
	return present, nil
}
