// Package svcctl drives a system service on a host: the probes that tell
// whether it runs and starts at boot, and the systemctl or SysV commands
// that change that. The service kind is built on it, and pg_conf restarts
// a PostgreSQL server with it, so there is one way migrun handles services.
package svcctl

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// Service states and managers.
const (
	Started   = "started"
	Stopped   = "stopped"
	Restarted = "restarted"
	Reloaded  = "reloaded"

	Systemd = "systemd"
	SysV    = "sysv"
)

const (
	// DefaultSettle bounds how long a started service may take to run.
	DefaultSettle = 5 * time.Second
	defaultPoll   = 500 * time.Millisecond
)

// Want is a service and the state wanted of it.
type Want struct {
	Name    string
	State   string // Started, Stopped, Restarted, Reloaded, or "" (left as it is)
	Enabled string // "true", "false", or "" (left as it is)
	Manager string // Systemd, SysV, or "" / "auto": systemctl where the host has it
	OnlyIf  string // "installed", "enabled", or "": act only where the service is so

	// Settle bounds how long Apply waits for a started service to be
	// running (0: DefaultSettle), and PollEvery how often it looks.
	Settle, PollEvery time.Duration
}

// Apply runs p's commands on h and, after a start or a restart, waits
// until the service runs: systemctl returns before a simple service has
// had the chance to fail.
func (w Want) Apply(ctx context.Context, h *hostcmd.Session, p *Plan) error {
	if p.State != nil {
		if err := h.Run(ctx, *p.State); err != nil {
			return err
		}
		if p.Verify {
			if err := w.WaitRunning(ctx, h, p.Manager); err != nil {
				return err
			}
		}
	}
	if p.Boot != nil {
		return h.Run(ctx, *p.Boot)
	}
	return nil
}

// Describe is what Apply would do, in its order: the commands, and the
// wait that follows a start. A service already started (or stopped) as
// wanted still shows the command, as one that runs only if the service is
// no longer so when the step comes: an earlier step of the plan may stop
// it (a plan's start-engine after its stop-engine), and the reviewer sees
// what would then run.
func (w Want) Describe(h *hostcmd.Session, p *Plan) []string {
	var lines []string
	switch {
	case p.State != nil:
		lines = append(lines, h.Line(*p.State))
		if p.Verify {
			lines = append(lines, fmt.Sprintf("then wait up to %s for %s to be running", w.SettleTime(), w.Name))
		}
	case p.Skipped:
	case w.State == Started:
		c := w.stateCmd(p.Manager, "start")
		c.Note = "only if " + w.Name + " is not running by then: it runs now"
		lines = append(lines, h.Line(*c))
	case w.State == Stopped:
		c := w.stateCmd(p.Manager, "stop")
		c.Note = "only if " + w.Name + " runs by then: it does not now"
		lines = append(lines, h.Line(*c))
	}
	if p.Boot != nil {
		lines = append(lines, h.Line(*p.Boot))
	}
	return lines
}

// Plan is what the service needs, found by read-only probes: the
// state command and the boot command, either of which may be absent.
type Plan struct {
	Manager string       // Systemd or SysV
	State   *hostcmd.Cmd // start/stop/restart/reload; nil when already so
	Boot    *hostcmd.Cmd // enable/disable; nil when already so
	// Verify: after the state command, wait until the service runs.
	Verify  bool
	Reasons []string
	// Skipped: only_if leaves the service alone (not installed, or not
	// enabled at boot).
	Skipped bool
}

// Done reports that nothing needs to run.
func (p *Plan) Done() bool { return p.State == nil && p.Boot == nil }

// Intent says what is wanted, for when the host cannot be asked.
func (w Want) Intent() string {
	var parts []string
	if w.State != "" {
		parts = append(parts, "make "+w.Name+" "+w.State)
	}
	switch w.Enabled {
	case "true":
		parts = append(parts, "enable it at boot")
	case "false":
		parts = append(parts, "disable it at boot")
	}
	return strings.Join(parts, ", ") + " (commands chosen on the host)"
}

// SettleTime is how long a started service may take to run.
func (w Want) SettleTime() time.Duration {
	if w.Settle > 0 {
		return w.Settle
	}
	return DefaultSettle
}

// manager resolves auto: systemctl when the host has it, else service.
func (w Want) manager(ctx context.Context, h *hostcmd.Session) (string, error) {
	switch w.Manager {
	case Systemd, SysV:
		return w.Manager, nil
	}
	found, err := h.First(ctx, "systemctl", "service")
	switch {
	case err != nil:
		return "", err
	case found == "systemctl":
		return Systemd, nil
	case found == "service":
		return SysV, nil
	}
	return "", errors.New("neither systemctl nor service found on the PATH: cannot manage services")
}

// Plan probes the host and decides what to run.
func (w Want) Plan(ctx context.Context, h *hostcmd.Session) (*Plan, error) {
	mgr, err := w.manager(ctx, h)
	if err != nil {
		return nil, err
	}
	p := &Plan{Manager: mgr}
	if w.OnlyIf != "" {
		skip, err := w.skipped(ctx, h, mgr)
		if err != nil {
			return nil, err
		}
		if skip != "" {
			p.Reasons, p.Skipped = append(p.Reasons, skip), true
			return p, nil
		}
	}
	if err := w.planState(ctx, h, p); err != nil {
		return nil, err
	}
	if err := w.planBoot(ctx, h, p); err != nil {
		return nil, err
	}
	return p, nil
}

// skipped tells why only_if leaves the service alone ("" when it does
// not): it is not installed, or (only_if: enabled) not enabled at boot.
func (w Want) skipped(ctx context.Context, h *hostcmd.Session, mgr string) (string, error) {
	installed, enabled, err := w.presence(ctx, h, mgr)
	switch {
	case err != nil:
		return "", err
	case !installed:
		return w.Name + " is not installed: left alone (only_if: " + w.OnlyIf + ")", nil
	case w.OnlyIf == "enabled" && !enabled:
		return w.Name + " is not enabled at boot: left alone (only_if: enabled)", nil
	}
	return "", nil
}

// presence probes whether the service is installed and enabled at boot.
func (w Want) presence(ctx context.Context, h *hostcmd.Session, mgr string) (installed, enabled bool, err error) {
	if mgr == SysV {
		r, err := h.Probe(ctx, executors.Command{Script: "test -x /etc/init.d/" + executors.Quote(w.Name)})
		if err != nil || !r.OK() {
			return false, false, err
		}
		b, err := w.sysvBoot(ctx, h)
		if err != nil {
			return true, false, err
		}
		r, err = h.Probe(ctx, b.probe)
		return true, err == nil && r.OK(), err
	}
	// One probe: systemd shows an unknown unit as LoadState=not-found.
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"systemctl", "show", "-p", "LoadState", "-p", "UnitFileState", w.Name}})
	if err != nil {
		return false, false, err
	}
	if !r.OK() {
		return false, false, fmt.Errorf("systemctl show %s: %w", w.Name, r.Exit)
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
func (w Want) stateCmd(mgr, action string) *hostcmd.Cmd {
	if mgr == SysV {
		return &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"service", w.Name, action}}}
	}
	return &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", action, w.Name}}}
}

func (w Want) planState(ctx context.Context, h *hostcmd.Session, p *Plan) error {
	switch w.State {
	case "":
		return nil
	case Restarted:
		p.State, p.Verify = w.stateCmd(p.Manager, "restart"), true
		p.Reasons = append(p.Reasons, "restart always runs")
		return nil
	case Reloaded:
		p.State = w.stateCmd(p.Manager, "reload")
		p.Reasons = append(p.Reasons, "reload always runs")
		return nil
	}
	r, status, err := w.running(ctx, h, p.Manager)
	if err != nil {
		return err
	}
	running := r.OK()
	switch {
	case w.State == Started && running:
		p.Reasons = append(p.Reasons, w.Name+" is running")
	case w.State == Started:
		p.State, p.Verify = w.stateCmd(p.Manager, "start"), true
		p.Reasons = append(p.Reasons, w.Name+" is not running"+status)
	case w.State == Stopped && running:
		p.State = w.stateCmd(p.Manager, "stop")
		p.Reasons = append(p.Reasons, w.Name+" is running")
	default:
		p.Reasons = append(p.Reasons, w.Name+" is not running"+status)
	}
	return nil
}

// running asks whether the service runs. The result carries the probe's
// exit for errors; note is for reasons, such as " (failed)".
func (w Want) running(ctx context.Context, h *hostcmd.Session, mgr string) (r hostcmd.Result, note string, err error) {
	// is-active without --quiet prints the state (inactive, failed,
	// activating), worth showing; its exit status is the answer.
	probe := executors.Command{Argv: []string{"systemctl", "is-active", w.Name}}
	if mgr == SysV {
		probe = executors.Command{Argv: []string{"service", w.Name, "status"}}
	}
	r, err = h.Probe(ctx, probe)
	if err != nil {
		return r, "", err
	}
	if st := hostcmd.FirstNonBlankLine(string(r.Stdout)); mgr == Systemd && st != "" {
		note = " (" + st + ")"
	}
	return r, note, nil
}

func (w Want) planBoot(ctx context.Context, h *hostcmd.Session, p *Plan) error {
	if w.Enabled == "" {
		return nil
	}
	want := w.Enabled == "true"
	if p.Manager == SysV {
		return w.planBootSysV(ctx, h, p, want)
	}
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"systemctl", "is-enabled", w.Name}})
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
		p.Reasons = append(p.Reasons, w.Name+" is enabled at boot"+note)
	case want:
		p.Boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", "enable", w.Name}}}
		p.Reasons = append(p.Reasons, w.Name+" is not enabled at boot"+note)
	case enabled:
		p.Boot = &hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"systemctl", "disable", w.Name}}}
		p.Reasons = append(p.Reasons, w.Name+" is enabled at boot"+note)
	default:
		p.Reasons = append(p.Reasons, w.Name+" is not enabled at boot"+note)
	}
	return nil
}

// WaitRunning polls until the service runs, for at most settle. On
// failure the error carries the service's status, which usually says why,
// and wraps the last probe's *executors.ExitError.
func (w Want) WaitRunning(ctx context.Context, h *hostcmd.Session, mgr string) error {
	every := w.PollEvery
	if every <= 0 {
		every = defaultPoll
	}
	deadline := time.Now().Add(w.SettleTime())
	for {
		r, note, err := w.running(ctx, h, mgr)
		if err != nil {
			return err
		}
		if r.OK() {
			return nil
		}
		if time.Now().After(deadline) {
			status := executors.Command{Argv: []string{"systemctl", "status", w.Name, "--no-pager", "-n", "20"}}
			if mgr == SysV {
				status = executors.Command{Argv: []string{"service", w.Name, "status"}}
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
			return fmt.Errorf("%s is not running%s %s after it was started: %w%s", w.Name, note, w.SettleTime(), r.Exit, detail)
		}
		if err := hostcmd.Sleep(ctx, every); err != nil {
			return fmt.Errorf("waiting for %s to run: %w", w.Name, err)
		}
	}
}
