package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var serviceKind = Kind{
	Name:      "service",
	Summary:   "start, stop, restart or reload a service and enable or disable it at boot (systemd or SysV)",
	NeedsHost: true,
	New:       func() Spec { return new(Service) },
}

var _ Spec = (*Service)(nil)

// Service puts a system service in a state: running or not, started at
// boot or not. It drives systemctl where the host has it and the SysV
// service command (with chkconfig or update-rc.d for boot) where it does
// not.
type Service struct {
	Name    string `yaml:"name" required:"true" doc:"the service (systemd unit or SysV init script), e.g. ovirt-engine or postgresql.service"`
	State   string `yaml:"state" enum:"started|stopped|restarted|reloaded" doc:"started and stopped are states (done when already so); restarted and reloaded are actions that run every time"`
	Enabled string `yaml:"enabled" enum:"true|false" doc:"start the service at boot (true) or not (false); left as it is when not given"`
	Manager string `yaml:"manager" enum:"auto|systemd|sysv" default:"auto" doc:"how to drive the service: auto uses systemctl when the host has it, else the SysV service command"`
	OnlyIf  string `yaml:"only_if" enum:"installed|enabled" doc:"act only where the service is installed (installed), or installed and enabled at boot (enabled); elsewhere the step is done without touching it. For optional services a plan cannot assume, e.g. ovirt-engine-notifier"`

	// settle bounds how long Apply waits for a started service to be
	// running, and pollEvery how often it looks; tests shorten both.
	settle, pollEvery time.Duration
}

// Service states and managers.
const (
	svcStarted   = "started"
	svcStopped   = "stopped"
	svcRestarted = "restarted"
	svcReloaded  = "reloaded"

	mgrSystemd = "systemd"
	mgrSysV    = "sysv"
)

const (
	defaultServiceSettle = 5 * time.Second
	defaultServicePoll   = 500 * time.Millisecond
)

// Validate checks the name and that the step asks for something.
func (s *Service) Validate() []Problem {
	var ps []Problem
	if s.Name != "" && !hostcmd.ServiceNameRE.MatchString(s.Name) {
		ps = append(ps, Problem{"name", fmt.Sprintf("%q is not a service name (letters, digits and _@.:-\\, not starting with -)", s.Name)})
	}
	if s.State == "" && s.Enabled == "" {
		ps = append(ps, Problem{"", "give state, enabled or both: the step would do nothing"})
	}
	return ps
}

// Hosts is the step's host.
func (s *Service) Hosts(stepHost string) []string { return []string{stepHost} }

// servicePlan is what the service needs, found by read-only probes: the
// state command and the boot command, either of which may be absent.
type servicePlan struct {
	manager string
	state   *hostcmd.Cmd // start/stop/restart/reload; nil when already so
	boot    *hostcmd.Cmd // enable/disable; nil when already so
	// verify: after the state command, wait until the service runs.
	verify  bool
	reasons []string
}

// done reports that nothing needs to run.
func (p *servicePlan) done() bool { return p.state == nil && p.boot == nil }

// Check probes the service: done when it already runs (or not) and
// starts at boot (or not) as asked. restarted and reloaded are never done.
func (s *Service) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, s.what())
	if err != nil {
		return Check{}, err
	}
	p, err := s.plan(ctx, h)
	if err != nil {
		return Check{}, h.wrap(err)
	}
	return Check{Done: p.done(), Reason: strings.Join(p.reasons, "; ")}, nil
}

// Describe lists the commands Apply would run, chosen by the same probes.
func (s *Service) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	h, err := openHost(ctx, rt, s.what())
	if err != nil {
		// Offline or unreachable: still say what the step is for.
		return []Action{{Host: rt.Host, Summary: s.intent()}}, err
	}
	p, err := s.plan(ctx, h)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: s.intent()}}, h.wrap(err)
	}
	// In Apply's order: the wait follows the state command directly.
	var acts []Action
	if p.state != nil {
		acts = append(acts, h.action(*p.state))
		if p.verify {
			acts = append(acts, Action{Host: rt.Host, Summary: fmt.Sprintf("then wait up to %s for %s to be running", s.settleTime(), s.Name)})
		}
	}
	if p.boot != nil {
		acts = append(acts, h.action(*p.boot))
	}
	return acts, nil
}

// Apply runs the commands the probes call for and, after a start or a
// restart, waits until the service runs: systemctl returns before a
// simple service has had the chance to fail.
func (s *Service) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	h, err := openHost(ctx, rt, s.what())
	if err != nil {
		return Outcome{}, err
	}
	p, err := s.plan(ctx, h)
	if err != nil {
		return Outcome{}, h.wrap(err)
	}
	if p.state != nil {
		if err := h.Run(ctx, *p.state); err != nil {
			return h.outcome(true), h.wrap(err)
		}
		if p.verify {
			if err := s.waitRunning(ctx, h, p.manager); err != nil {
				return h.outcome(true), h.wrap(err)
			}
		}
	}
	if p.boot != nil {
		if err := h.Run(ctx, *p.boot); err != nil {
			return h.outcome(true), h.wrap(err)
		}
	}
	return h.outcome(!p.done()), nil
}

func (s *Service) what() string { return "service " + s.Name }

// intent says what the step is for when the host cannot be asked.
func (s *Service) intent() string {
	var parts []string
	if s.State != "" {
		parts = append(parts, "make "+s.Name+" "+s.State)
	}
	switch s.Enabled {
	case "true":
		parts = append(parts, "enable it at boot")
	case "false":
		parts = append(parts, "disable it at boot")
	}
	return strings.Join(parts, ", ") + " (commands chosen on the host)"
}

func (s *Service) settleTime() time.Duration {
	if s.settle > 0 {
		return s.settle
	}
	return defaultServiceSettle
}

// manager resolves auto: systemctl when the host has it, else service.
func (s *Service) manager(ctx context.Context, h *hostSession) (string, error) {
	switch s.Manager {
	case mgrSystemd, mgrSysV:
		return s.Manager, nil
	}
	found, err := h.First(ctx, "systemctl", "service")
	switch {
	case err != nil:
		return "", err
	case found == "systemctl":
		return mgrSystemd, nil
	case found == "service":
		return mgrSysV, nil
	}
	return "", errors.New("neither systemctl nor service found on the PATH: cannot manage services")
}

// plan probes the host and decides what to run.
func (s *Service) plan(ctx context.Context, h *hostSession) (*servicePlan, error) {
	mgr, err := s.manager(ctx, h)
	if err != nil {
		return nil, err
	}
	p := &servicePlan{manager: mgr}
	if s.OnlyIf != "" {
		skip, err := s.skipped(ctx, h, mgr)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			p.reasons = append(p.reasons, skip)
			return p, nil
		}
	}
	if err := s.planState(ctx, h, p); err != nil {
		return nil, err
	}
	if err := s.planBoot(ctx, h, p); err != nil {
		return nil, err
	}
	return p, nil
}

// skipped tells why only_if leaves the service alone ("" when it does
// not): it is not installed, or (only_if: enabled) not enabled at boot.
func (s *Service) skipped(ctx context.Context, h *hostSession, mgr string) (string, error) {
	installed, enabled, err := s.presence(ctx, h, mgr)
	switch {
	case err != nil:
		return "", err
	case !installed:
		return s.Name + " is not installed: left alone (only_if: " + s.OnlyIf + ")", nil
	case s.OnlyIf == "enabled" && !enabled:
		return s.Name + " is not enabled at boot: left alone (only_if: enabled)", nil
	}
	return "", nil
}

// presence probes whether the service is installed and enabled at boot.
func (s *Service) presence(ctx context.Context, h *hostSession, mgr string) (installed, enabled bool, err error) {
	if mgr == mgrSysV {
		r, err := h.Probe(ctx, executors.Command{Script: "test -x /etc/init.d/" + executors.Quote(s.Name)})
		if err != nil || !r.OK() {
			return false, false, err
		}
		b, err := s.sysvBoot(ctx, h)
		if err != nil {
			return true, false, err
		}
		r, err = h.Probe(ctx, b.probe)
		return true, err == nil && r.OK(), err
	}
	// One probe: systemd shows an unknown unit as LoadState=not-found.
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"systemctl", "show", "-p", "LoadState", "-p", "UnitFileState", s.Name}})
	if err != nil {
		return false, false, err
	}
	if !r.OK() {
		return false, false, fmt.Errorf("systemctl show %s: %w", s.Name, r.Exit)
	}
	props := map[string]string{}
	for _, line := range strings.Split(string(r.Stdout), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			props[k] = v
		}
	}
	installed = props["LoadState"] != "" && props["LoadState"] != "not-found"
	enabled = props["UnitFileState"] == "enabled" || props["UnitFileState"] == "enabled-runtime"
	return installed, enabled, nil
}

// stateCmd is the command that performs action (start, stop, ...).
func (s *Service) stateCmd(mgr, action string) *hostcmd.Cmd {
	if mgr == mgrSysV {
		return &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"service", s.Name, action}}}
	}
	return &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", action, s.Name}}}
}

func (s *Service) planState(ctx context.Context, h *hostSession, p *servicePlan) error {
	switch s.State {
	case "":
		return nil
	case svcRestarted:
		p.state, p.verify = s.stateCmd(p.manager, "restart"), true
		p.reasons = append(p.reasons, "restart always runs")
		return nil
	case svcReloaded:
		p.state = s.stateCmd(p.manager, "reload")
		p.reasons = append(p.reasons, "reload always runs")
		return nil
	}
	r, status, err := s.running(ctx, h, p.manager)
	if err != nil {
		return err
	}
	running := r.OK()
	switch {
	case s.State == svcStarted && running:
		p.reasons = append(p.reasons, s.Name+" is running")
	case s.State == svcStarted:
		p.state, p.verify = s.stateCmd(p.manager, "start"), true
		p.reasons = append(p.reasons, s.Name+" is not running"+status)
	case s.State == svcStopped && running:
		p.state = s.stateCmd(p.manager, "stop")
		p.reasons = append(p.reasons, s.Name+" is running")
	default:
		p.reasons = append(p.reasons, s.Name+" is not running"+status)
	}
	return nil
}

// running asks whether the service runs. The result carries the probe's
// exit for errors; note is for reasons, such as " (failed)".
func (s *Service) running(ctx context.Context, h *hostSession, mgr string) (r hostcmd.Result, note string, err error) {
	// is-active without --quiet prints the state (inactive, failed,
	// activating), worth showing; its exit status is the answer.
	probe := executors.Command{Argv: []string{"systemctl", "is-active", s.Name}}
	if mgr == mgrSysV {
		probe = executors.Command{Argv: []string{"service", s.Name, "status"}}
	}
	r, err = h.Probe(ctx, probe)
	if err != nil {
		return r, "", err
	}
	if st := hostcmd.FirstNonBlankLine(string(r.Stdout)); mgr == mgrSystemd && st != "" {
		note = " (" + st + ")"
	}
	return r, note, nil
}

func (s *Service) planBoot(ctx context.Context, h *hostSession, p *servicePlan) error {
	if s.Enabled == "" {
		return nil
	}
	want := s.Enabled == "true"
	if p.manager == mgrSysV {
		return s.planBootSysV(ctx, h, p, want)
	}
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"systemctl", "is-enabled", s.Name}})
	if err != nil {
		return err
	}
	state := hostcmd.FirstNonBlankLine(string(r.Stdout))
	// is-enabled exits 0 for static, indirect and alias units too: they
	// start when something else pulls them in and cannot be disabled,
	// so only enabled units are ones "disable" can change.
	enabled := r.OK()
	if !want {
		enabled = state == "enabled" || state == "enabled-runtime"
	}
	note := ""
	if state != "" {
		note = " (" + state + ")"
	}
	switch {
	case want && enabled:
		p.reasons = append(p.reasons, s.Name+" is enabled at boot"+note)
	case want:
		p.boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", "enable", s.Name}}}
		p.reasons = append(p.reasons, s.Name+" is not enabled at boot"+note)
	case enabled:
		p.boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", "disable", s.Name}}}
		p.reasons = append(p.reasons, s.Name+" is enabled at boot"+note)
	default:
		p.reasons = append(p.reasons, s.Name+" is not enabled at boot"+note)
	}
	return nil
}

// sysvBoot is how a SysV host tells and changes whether a service starts
// at boot: chkconfig (Red Hat) or update-rc.d (Debian).
type sysvBoot struct {
	probe   executors.Command // exits 0 when the service starts at boot
	on, off []string
}

func (s *Service) sysvBoot(ctx context.Context, h *hostSession) (sysvBoot, error) {
	tool, err := h.First(ctx, "chkconfig", "update-rc.d")
	if err != nil {
		return sysvBoot{}, err
	}
	switch tool {
	case "chkconfig":
		// chkconfig NAME exits 0 when the service starts in the current
		// runlevel.
		return sysvBoot{probe: executors.Command{Argv: []string{"chkconfig", s.Name}},
			on: []string{"chkconfig", s.Name, "on"}, off: []string{"chkconfig", s.Name, "off"}}, nil
	case "update-rc.d":
		// update-rc.d has no query: a start link in a multi-user runlevel
		// is what it would have made.
		return sysvBoot{probe: executors.Command{Script: "ls /etc/rc[2345].d/S[0-9][0-9]" + executors.Quote(s.Name) + " >/dev/null 2>&1"},
			on: []string{"update-rc.d", s.Name, "enable"}, off: []string{"update-rc.d", s.Name, "disable"}}, nil
	}
	return sysvBoot{}, errors.New("neither chkconfig nor update-rc.d found: cannot change whether " + s.Name + " starts at boot")
}

// planBootSysV uses chkconfig (Red Hat) or update-rc.d (Debian).
func (s *Service) planBootSysV(ctx context.Context, h *hostSession, p *servicePlan, want bool) error {
	b, err := s.sysvBoot(ctx, h)
	if err != nil {
		return err
	}
	r, err := h.Probe(ctx, b.probe)
	if err != nil {
		return err
	}
	switch {
	case want && r.OK():
		p.reasons = append(p.reasons, s.Name+" is enabled at boot")
	case want:
		p.boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: b.on}}
		p.reasons = append(p.reasons, s.Name+" is not enabled at boot")
	case r.OK():
		p.boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: b.off}}
		p.reasons = append(p.reasons, s.Name+" is enabled at boot")
	default:
		p.reasons = append(p.reasons, s.Name+" is not enabled at boot")
	}
	return nil
}

// waitRunning polls until the service runs, for at most settle. On
// failure the error carries the service's status, which usually says why,
// and wraps the last probe's *executors.ExitError.
func (s *Service) waitRunning(ctx context.Context, h *hostSession, mgr string) error {
	every := s.pollEvery
	if every <= 0 {
		every = defaultServicePoll
	}
	deadline := time.Now().Add(s.settleTime())
	for {
		r, note, err := s.running(ctx, h, mgr)
		if err != nil {
			return err
		}
		if r.OK() {
			return nil
		}
		if time.Now().After(deadline) {
			status := executors.Command{Argv: []string{"systemctl", "status", s.Name, "--no-pager", "-n", "20"}}
			if mgr == mgrSysV {
				status = executors.Command{Argv: []string{"service", s.Name, "status"}}
			}
			// status exits non-zero for a stopped service: its output is
			// the point, not its exit status.
			st, err := h.Probe(ctx, status)
			if err != nil {
				return err
			}
			detail := ""
			if out := st.Output(); out != "" {
				detail = "\n" + hostcmd.Show(status) + ":\n" + out
			}
			return fmt.Errorf("%s is not running%s %s after it was started: %w%s", s.Name, note, s.settleTime(), r.Exit, detail)
		}
		if err := hostcmd.Sleep(ctx, every); err != nil {
			return fmt.Errorf("waiting for %s to run: %w", s.Name, err)
		}
	}
}
