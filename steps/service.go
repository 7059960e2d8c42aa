package steps

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/svcctl"
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

// want is the service and its wanted state, for svcctl.
func (s *Service) want() svcctl.Want {
	return svcctl.Want{Name: s.Name, State: s.State, Enabled: s.Enabled, Manager: s.Manager, OnlyIf: s.OnlyIf,
		Settle: s.settle, PollEvery: s.pollEvery}
}

// Check probes the service: done when it already runs (or not) and
// starts at boot (or not) as asked. restarted and reloaded are never done.
func (s *Service) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, s.what())
	if err != nil {
		return Check{}, err
	}
	p, err := s.want().Plan(ctx, h.Session)
	if err != nil {
		return Check{}, h.wrap(err)
	}
	return Check{Done: p.Done(), Reason: strings.Join(p.Reasons, "; "), Planned: p}, nil
}

// Describe lists the commands Apply would run, chosen by the same probes.
func (s *Service) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	return describeService(ctx, rt, s.want())
}

// Apply runs the commands the probes call for and, after a start or a
// restart, waits until the service runs.
func (s *Service) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	planned, _ := rt.Checked.(*svcctl.Plan)
	return applyService(ctx, rt, s.want(), planned)
}

func (s *Service) what() string { return "service " + s.Name }
