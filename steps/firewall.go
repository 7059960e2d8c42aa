package steps

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var firewallKind = Kind{
	Name:      "firewall",
	Summary:   "open a port in the host firewall (firewalld, iptables or nftables), optionally to one source only",
	NeedsHost: true,
	New:       func() Spec { return new(Firewall) },
}

var _ Spec = (*Firewall)(nil)

// Firewall opens a port in the host's firewall, to everyone or to one
// source address or network, now and (unless persist: false) after a
// reboot. It adds a rule; it never removes or reorders existing ones.
type Firewall struct {
	Port    int    `yaml:"port" required:"true" doc:"the port to open, 1-65535"`
	Proto   string `yaml:"proto" enum:"tcp|udp" default:"tcp" doc:"the protocol of the port"`
	Source  string `yaml:"source" doc:"only this IPv4 address or network (CIDR such as 10.0.0.0/24) may connect; anyone when not given"`
	Backend string `yaml:"backend" enum:"auto|firewalld|iptables|nftables" default:"auto" doc:"the firewall to change: auto uses firewalld when it runs, else iptables, else nft"`
	Persist string `yaml:"persist" enum:"true|false" default:"true" doc:"keep the rule after a reboot: firewalld --permanent, or the rules file iptables or nftables loads at boot (the step fails when there is none)"`
}

// Firewall backends.
const (
	fwFirewalld = "firewalld"
	fwIPTables  = "iptables"
	fwNFTables  = "nftables"
)

// Validate checks the port and the source.
func (f *Firewall) Validate() []Problem {
	var ps []Problem
	if f.Port < 1 || f.Port > 65535 {
		ps = append(ps, Problem{"port", fmt.Sprintf("%d is not a port number from 1 to 65535", f.Port)})
	}
	if f.Source != "" {
		if _, err := parseFirewallSource(f.Source); err != nil {
			ps = append(ps, Problem{"source", err.Error()})
		}
	}
	return ps
}

// parseFirewallSource reads an IPv4 address or network. A network with host bits
// set (10.0.0.5/24) is refused rather than silently widened or narrowed:
// each firewall normalises it its own way, and the checks compare text.
func parseFirewallSource(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil || !a.Is4() {
			return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or network such as 10.0.0.0/24 (IPv6 is not supported)", s)
		}
		return netip.PrefixFrom(a, 32), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil || !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%q is not an IPv4 address or network such as 10.0.0.0/24 (IPv6 is not supported)", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has host bits set: did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// Hosts is the step's host.
func (f *Firewall) Hosts(stepHost string) []string { return []string{stepHost} }

func (f *Firewall) proto() string {
	if f.Proto == "" {
		return "tcp"
	}
	return f.Proto
}

func (f *Firewall) persist() bool { return f.Persist != "false" }

// source is the source as a prefix; ok is false when anyone may connect.
func (f *Firewall) source() (netip.Prefix, bool) {
	if f.Source == "" {
		return netip.Prefix{}, false
	}
	p, err := parseFirewallSource(f.Source)
	return p, err == nil
}

// sourceText is the source as firewalld and nft list it: an address
// without /32, a network as a CIDR.
func (f *Firewall) sourceText() string {
	src, ok := f.source()
	switch {
	case !ok:
		return ""
	case src.IsSingleIP():
		return src.Addr().String()
	}
	return src.String()
}

func (f *Firewall) what() string {
	s := fmt.Sprintf("open %d/%s", f.Port, f.proto())
	if f.Source != "" {
		s += " to " + f.Source
	}
	return "firewall: " + s
}

// firewallPlan is the commands that would open the port, in order, and
// what the probes found.
type firewallPlan struct {
	backend string
	cmds    []hostcmd.Cmd
	reasons []string
}

// Check probes the firewall: done when the rule is there now and, with
// persist, also in what the host loads at boot.
func (f *Firewall) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, f.what())
	if err != nil {
		return Check{}, err
	}
	p, err := f.plan(ctx, h)
	if err != nil {
		return Check{}, h.wrap(err)
	}
	return Check{Done: len(p.cmds) == 0, Reason: strings.Join(p.reasons, "; ")}, nil
}

// Describe lists the commands Apply would run, with where the rule lands
// and where it is saved.
func (f *Firewall) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	h, err := openHost(ctx, rt, f.what())
	if err != nil {
		return []Action{{Host: rt.Host, Summary: f.what() + " (commands chosen on the host)"}}, err
	}
	p, err := f.plan(ctx, h)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: f.what() + " (commands chosen on the host)"}}, h.wrap(err)
	}
	acts := make([]Action, 0, len(p.cmds))
	for _, c := range p.cmds {
		acts = append(acts, h.action(c))
	}
	return acts, nil
}

// Apply runs the commands the probes call for. Each is safe to repeat
// after an interruption: the probes then find what is already done.
func (f *Firewall) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	h, err := openHost(ctx, rt, f.what())
	if err != nil {
		return Outcome{}, err
	}
	p, err := f.plan(ctx, h)
	if err != nil {
		return Outcome{}, h.wrap(err)
	}
	for _, c := range p.cmds {
		if err := h.Run(ctx, c); err != nil {
			// Changed even so: an earlier command, or this one in
			// part, may have taken effect.
			return h.outcome(true), h.wrap(err)
		}
	}
	return h.outcome(len(p.cmds) > 0), nil
}

// backend resolves auto: firewalld when it runs (its rules would replace
// any added behind its back at the next reload), else iptables, else nft.
func (f *Firewall) backend(ctx context.Context, h *hostSession) (string, error) {
	switch f.Backend {
	case fwFirewalld, fwIPTables, fwNFTables:
		return f.Backend, nil
	}
	has, err := h.Has(ctx, "firewall-cmd")
	if err != nil {
		return "", err
	}
	if has {
		r, err := h.Probe(ctx, executors.Command{Argv: []string{"firewall-cmd", "--state"}})
		if err != nil {
			return "", err
		}
		if r.OK() {
			return fwFirewalld, nil
		}
	}
	switch tool, err := h.First(ctx, "iptables", "nft"); {
	case err != nil:
		return "", err
	case tool == "iptables":
		return fwIPTables, nil
	case tool == "nft":
		return fwNFTables, nil
	}
	return "", errors.New("no firewall found: firewalld is not running and neither iptables nor nft is installed")
}

func (f *Firewall) plan(ctx context.Context, h *hostSession) (*firewallPlan, error) {
	b, err := f.backend(ctx, h)
	if err != nil {
		return nil, err
	}
	p := &firewallPlan{backend: b}
	switch b {
	case fwFirewalld:
		err = f.planFirewalld(ctx, h, p)
	case fwIPTables:
		err = f.planIPTables(ctx, h, p)
	default:
		err = f.planNFTables(ctx, h, p)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", b, err)
	}
	return p, nil
}

// --- firewalld ---

func (f *Firewall) planFirewalld(ctx context.Context, h *hostSession, p *firewallPlan) error {
	// A port for everyone is a port of the default zone; one for a
	// single source needs a rich rule.
	rule := fmt.Sprintf("%d/%s", f.Port, f.proto())
	queryArg, addArg := "--query-port="+rule, "--add-port="+rule
	if src := f.sourceText(); src != "" {
		rule = fmt.Sprintf(`rule family="ipv4" source address="%s" port port="%d" protocol="%s" accept`, src, f.Port, f.proto())
		queryArg, addArg = "--query-rich-rule="+rule, "--add-rich-rule="+rule
	}
	type layer struct {
		name  string
		flags []string
	}
	layers := []layer{{"runtime", nil}}
	if f.persist() {
		layers = append(layers, layer{"permanent", []string{"--permanent"}})
	}
	for _, l := range layers {
		cmd := func(arg string) executors.Command {
			return executors.Command{Argv: slices.Concat([]string{"firewall-cmd"}, l.flags, []string{arg})}
		}
		there, err := h.YesNo(ctx, cmd(queryArg))
		if err != nil {
			return err
		}
		if there {
			p.reasons = append(p.reasons, rule+" is open in the "+l.name+" configuration")
			continue
		}
		p.reasons = append(p.reasons, rule+" is not open in the "+l.name+" configuration")
		p.cmds = append(p.cmds, hostcmd.Cmd{Cmd: cmd(addArg)})
	}
	return nil
}

// --- nftables ---

// planSave, where the rule is to persist, adds the command that saves the
// running rules (printed by dump) to the first of candidates the host has,
// unless the rule is live (there) and the file already holds line; note
// ends the command's reason.
func (f *Firewall) planSave(ctx context.Context, h *hostSession, p *firewallPlan, candidates []rulesFileChoice, install string, there bool, line, dump, note string) error {
	if !f.persist() {
		return nil
	}
	file, why, err := f.rulesFile(ctx, h, candidates, install)
	if err != nil {
		return err
	}
	saved := false
	if there {
		if saved, err = hostFileHasLine(ctx, h, file, line); err != nil {
			return err
		}
	}
	if saved {
		p.reasons = append(p.reasons, file+" has it")
		return nil
	}
	p.reasons = append(p.reasons, file+" lacks it")
	p.cmds = append(p.cmds, hostcmd.Cmd{Cmd: executors.Command{Script: rulesSaveScript(dump, file)}, Note: why + note})
	return nil
}
