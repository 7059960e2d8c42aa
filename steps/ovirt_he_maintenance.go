package steps

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var ovirtHEMaintenanceKind = Kind{
	Name:      "ovirt_he_maintenance",
	Summary:   "set or clear a hosted engine's global maintenance, from one of its hosts, and wait until the hosts report it",
	NeedsHost: true,
	New:       func() Spec { return new(OvirtHEMaintenance) },
}

var _ Spec = (*OvirtHEMaintenance)(nil)

// OvirtHEMaintenance sets the global maintenance of a hosted engine, or
// clears it, with hosted-engine on one of its hosts (the step's host). In
// global maintenance the HA agents leave the engine VM alone: without it
// they restart the VM once they find its engine down, which a stopped
// ovirt-engine is. The agents take a new mode up on their next pass, so
// the step returns only once `hosted-engine --vm-status` reports it: the
// engine may be stopped then.
type OvirtHEMaintenance struct {
	Mode    string `yaml:"mode" required:"true" enum:"global|none" doc:"global: the HA agents leave the engine VM alone; none: they watch over it again"`
	Timeout string `yaml:"timeout" default:"5m" doc:"how long to wait for the hosts to report the mode, a Go duration (the agents' pass is about 10 s)"`

	pollEvery time.Duration // tests shorten it
}

const (
	defaultHEMaintenanceTimeout = 5 * time.Minute
	defaultHEMaintenancePoll    = 2 * time.Second
)

// Validate checks the timeout; the mode is an enum.
func (m *OvirtHEMaintenance) Validate() []Problem {
	if _, err := hostcmd.PositiveDuration(m.Timeout, defaultHEMaintenanceTimeout); err != nil {
		return []Problem{{"timeout", err.Error()}}
	}
	return nil
}

func (m *OvirtHEMaintenance) Hosts(stepHost string) []string { return []string{stepHost} }

// timeout is Timeout, its default applied; Validate has vouched for it.
func (m *OvirtHEMaintenance) timeout() time.Duration {
	d, _ := hostcmd.PositiveDuration(m.Timeout, defaultHEMaintenanceTimeout)
	return d
}

var (
	heCheckDeployed = executors.Command{Argv: []string{"hosted-engine", "--check-deployed"}}
	heVMStatus      = executors.Command{Argv: []string{"hosted-engine", "--vm-status", "--json"}}
)

func (m *OvirtHEMaintenance) set() hostcmd.Cmd {
	return hostcmd.Cmd{Cmd: executors.Command{Argv: []string{"hosted-engine", "--set-maintenance", "--mode=" + m.Mode}}}
}

// wantGlobal is the global_maintenance the mode asks for.
func (m *OvirtHEMaintenance) wantGlobal() bool { return m.Mode == "global" }

// Check refuses a host that is not a hosted-engine host, or whose agents
// do not answer (before any change: nothing could be set there), and
// says whether the hosts already report the mode.
func (m *OvirtHEMaintenance) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, "hosted-engine global maintenance")
	if err != nil {
		return Check{}, err
	}
	global, err := m.reported(ctx, h)
	if err != nil {
		return Check{}, err
	}
	return Check{Done: global == m.wantGlobal(), Reason: "the hosts report global maintenance " + onOff(global)}, nil
}

func (m *OvirtHEMaintenance) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	h, err := openHost(ctx, rt, "hosted-engine global maintenance")
	if err != nil {
		return nil, err
	}
	c := m.set()
	c.Note = fmt.Sprintf("then wait until the hosts report global maintenance %s, at most %s", onOff(m.wantGlobal()), m.timeout())
	return []Action{h.action(c)}, nil
}

func (m *OvirtHEMaintenance) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	h, err := openHost(ctx, rt, "hosted-engine global maintenance")
	if err != nil {
		return Outcome{}, err
	}
	want := m.wantGlobal()
	global, err := m.reported(ctx, h)
	if err != nil {
		return Outcome{}, err
	}
	if global == want {
		return Outcome{Output: "the hosts report global maintenance " + onOff(global)}, nil
	}
	if err := h.Run(ctx, m.set()); err != nil {
		return Outcome{}, h.wrap(err)
	}
	timeout := m.timeout()
	every := m.pollEvery
	if every <= 0 {
		every = defaultHEMaintenancePoll
	}
	start := time.Now()
	for {
		if global, err = m.reported(ctx, h); err != nil {
			return Outcome{Changed: true}, err
		}
		if global == want {
			h.Note("the hosts report global maintenance %s after %s", onOff(want), time.Since(start).Round(time.Second))
			return h.outcome(true), nil
		}
		if time.Since(start) >= timeout {
			return Outcome{Changed: true}, h.wrap(fmt.Errorf("the hosts still report global maintenance %s %s after hosted-engine --set-maintenance --mode=%s (are the ovirt-ha-agent services running?)", onOff(global), timeout, m.Mode))
		}
		if err := hostcmd.Sleep(ctx, every); err != nil {
			return Outcome{Changed: true}, h.wrap(err)
		}
	}
}

// reported asks the hosts whether they are in global maintenance, after
// making sure this is a hosted-engine host. Its errors name the step and
// the host.
func (m *OvirtHEMaintenance) reported(ctx context.Context, h *hostSession) (bool, error) {
	r, err := h.Probe(ctx, heCheckDeployed)
	if err != nil {
		return false, h.wrap(err)
	}
	if !r.OK() {
		detail := r.Output()
		if r.Exit.ExitCode == 127 || strings.Contains(detail, "not found") {
			return false, h.wrap(fmt.Errorf("hosted-engine is not installed here: give a host of the hosted engine (one with ovirt-hosted-engine-setup)"))
		}
		return false, h.wrap(fmt.Errorf("no hosted engine is deployed here (hosted-engine --check-deployed: %s)", orExit(detail, r.Exit)))
	}
	r, err = h.Probe(ctx, heVMStatus)
	if err != nil {
		return false, h.wrap(err)
	}
	if !r.OK() {
		return false, h.wrap(fmt.Errorf("the HA agents do not answer (hosted-engine --vm-status: %s)", orExit(r.Output(), r.Exit)))
	}
	global, err := parseHEGlobalMaintenance(r.Stdout)
	if err != nil {
		return false, h.wrap(err)
	}
	return global, nil
}

// parseHEGlobalMaintenance reads global_maintenance from the JSON of
// `hosted-engine --vm-status --json`: an object with one member per host
// id and the cluster-wide "global_maintenance".
func parseHEGlobalMaintenance(out []byte) (bool, error) {
	var status map[string]json.RawMessage
	if err := json.Unmarshal(out, &status); err != nil {
		return false, fmt.Errorf("hosted-engine --vm-status --json: not JSON: %w", err)
	}
	raw, ok := status["global_maintenance"]
	if !ok {
		return false, fmt.Errorf("hosted-engine --vm-status --json: no global_maintenance in %s", executors.LastBytes(string(out), 200))
	}
	var global bool
	if err := json.Unmarshal(raw, &global); err != nil {
		return false, fmt.Errorf("hosted-engine --vm-status --json: global_maintenance is %s, not true or false", raw)
	}
	return global, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

// orExit is a probe's output, or its exit status when it printed nothing.
func orExit(out string, exit *executors.ExitError) string {
	if out != "" {
		return out
	}
	return fmt.Sprintf("exit status %d", exit.ExitCode)
}
