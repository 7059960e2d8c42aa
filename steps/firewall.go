package steps

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
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

// --- iptables ---

// iptablesSpec is the rule's match and target, in the order iptables -S
// prints them, so that "-A INPUT " + the words is the saved line.
func (f *Firewall) iptablesSpec() []string {
	var spec []string
	if src, ok := f.source(); ok {
		spec = append(spec, "-s", src.String())
	}
	return append(spec, "-p", f.proto(), "-m", f.proto(), "--dport", strconv.Itoa(f.Port), "-j", "ACCEPT")
}

// Where the boot scripts of the two families read saved iptables rules.
const (
	iptablesRHEL   = "/etc/sysconfig/iptables" // iptables-services
	iptablesDebDir = "/etc/iptables"           // iptables-persistent
	iptablesDeb    = "/etc/iptables/rules.v4"
)

func (f *Firewall) planIPTables(ctx context.Context, h *hostSession, p *firewallPlan) error {
	spec := f.iptablesSpec()
	there, err := h.YesNo(ctx, executors.Command{Argv: slices.Concat([]string{"iptables", "-C", "INPUT"}, spec)})
	if err != nil {
		return err
	}
	line := "-A INPUT " + strings.Join(spec, " ")
	if there {
		p.reasons = append(p.reasons, "INPUT has "+line)
	} else {
		r, err := h.Probe(ctx, executors.Command{Argv: []string{"iptables", "-S", "INPUT"}})
		if err != nil {
			return err
		}
		if !r.OK() {
			return r.Exit
		}
		src, _ := f.source()
		pos, before := iptablesInsertAt(string(r.Stdout), f.proto(), f.Port, src)
		note := "at the end of INPUT: no REJECT or DROP rule there catches this traffic"
		if before != "" {
			note = fmt.Sprintf("before rule %d, %s", pos, before)
		}
		p.reasons = append(p.reasons, "INPUT lacks "+line)
		p.cmds = append(p.cmds, hostcmd.Cmd{
			Cmd:  executors.Command{Argv: slices.Concat([]string{"iptables", "-I", "INPUT", strconv.Itoa(pos)}, spec)},
			Note: note,
		})
	}
	if !f.persist() {
		return nil
	}
	file, why, err := f.rulesFile(ctx, h, []rulesFileChoice{
		{iptablesRHEL, iptablesRHEL, iptablesRHEL + " exists: iptables-services loads it at boot"},
		{iptablesDebDir, iptablesDeb, iptablesDebDir + "/ exists: iptables-persistent loads rules.v4 at boot"},
	}, "iptables-services (RHEL) or iptables-persistent (Debian)")
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
	p.cmds = append(p.cmds, hostcmd.Cmd{Cmd: executors.Command{Script: rulesSaveScript("iptables-save", file)}, Note: why})
	return nil
}

// rulesFileChoice is a candidate place for saved rules: when test exists on
// the host, the rules go to file.
type rulesFileChoice struct {
	test, file, why string
}

// rulesFile picks the first candidate the host has; without one, the
// rule would vanish at the next boot, which a migration must not find
// out then.
func (f *Firewall) rulesFile(ctx context.Context, h *hostSession, candidates []rulesFileChoice, install string) (file, why string, err error) {
	var tried []string
	for _, c := range candidates {
		r, err := h.Probe(ctx, executors.Command{Argv: []string{"test", "-e", c.test}})
		if err != nil {
			return "", "", err
		}
		if r.OK() {
			return c.file, "keep it after a reboot: " + c.why, nil
		}
		tried = append(tried, c.test)
	}
	return "", "", fmt.Errorf("cannot keep the rule after a reboot: none of %s exists; install %s, or set persist: false to open the port until the next reboot only",
		strings.Join(tried, ", "), install)
}

// rulesSaveScript writes the output of dump to file through a part file, so
// that a failing dump leaves the file as it was instead of empty (an
// empty rules file at boot means no firewall at all), and then copies it
// over file's contents, keeping file's mode, owner and SELinux label.
func rulesSaveScript(dump, file string) string {
	part := executors.Quote(hostcmd.PartPath(file))
	return dump + " > " + part + " && cat " + part + " > " + executors.Quote(file) + " && rm -f " + part
}

// hostFileHasLine reports whether file on the host (read as the step's user:
// rules files are often root-only) has line, ignoring surrounding blanks.
func hostFileHasLine(ctx context.Context, h *hostSession, file, line string) (bool, error) {
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"cat", file}})
	if err != nil {
		return false, err
	}
	if !r.OK() {
		// Not there yet (rules.v4 before the first save): saving makes it.
		return false, nil
	}
	for l := range strings.Lines(string(r.Stdout)) {
		if strings.TrimSpace(l) == line {
			return true, nil
		}
	}
	return false, nil
}

// iptablesInsertAt chooses where in INPUT, listed by `iptables -S INPUT`,
// an ACCEPT of proto/port from src (an invalid prefix: from anywhere)
// goes: before the first REJECT or DROP rule that catches all of that
// traffic, where an ACCEPT after it would never be reached; else at the
// end. It returns the 1-based position for iptables -I and the rule it
// lands before ("" at the end).
//
// A DROP that catches only part of the traffic (one banned address, an
// interface) is not jumped: inserting above it would let through what it
// drops. Rules whose matches are not understood count as catching part.
func iptablesInsertAt(listing, proto string, port int, src netip.Prefix) (int, string) {
	n := 0
	for line := range strings.Lines(listing) {
		line = strings.TrimSpace(line)
		if !strings.HasPrefix(line, "-A ") {
			continue // -P (the policy) and -N lines are not rules
		}
		n++
		if iptablesCatchesAll(splitIptablesWords(line), proto, port, src) {
			return n, line
		}
	}
	return n + 1, ""
}

// iptablesCatchesAll reports whether a rule (the words of an -S line)
// REJECTs or DROPs every packet an ACCEPT of proto/port from src would
// accept. For connection tracking, a rule matching NEW counts: it stops
// every connection before it starts.
func iptablesCatchesAll(words []string, proto string, port int, src netip.Prefix) bool {
	target := ""
	for i := 0; i < len(words); i++ {
		opt := words[i]
		val := ""
		if i+1 < len(words) {
			val = words[i+1]
		}
		i++ // every option below takes one value
		switch opt {
		case "-A", "--append", "-m", "--match", "--comment", "--reject-with":
			// The chain, modules (their options decide), notes and
			// the kind of rejection do not narrow the match.
		case "-p", "--protocol":
			if val != proto && val != "all" {
				return false
			}
		case "--dport", "--destination-port":
			if !iptablesPortIn(val, port) {
				return false
			}
		case "--dports", "--destination-ports":
			if !slices.ContainsFunc(strings.Split(val, ","), func(r string) bool { return iptablesPortIn(r, port) }) {
				return false
			}
		case "--state", "--ctstate":
			if !slices.Contains(strings.Split(val, ","), "NEW") {
				return false
			}
		case "-s", "--source":
			p, err := netip.ParsePrefix(val)
			if err != nil || !src.IsValid() || !p.Contains(src.Addr()) || p.Bits() > src.Bits() {
				return false
			}
		case "-j", "--jump":
			target = val
		default:
			// !, -i, -d, --sport, --syn, other modules' options, ...
			return false
		}
	}
	return target == "REJECT" || target == "DROP"
}

// iptablesPortIn reports whether port is r: "5432" or a range "5000:6000".
func iptablesPortIn(r string, port int) bool {
	lo, hi, isRange := strings.Cut(r, ":")
	a, err := strconv.Atoi(lo)
	if err != nil {
		return false
	}
	b := a
	if isRange {
		if b, err = strconv.Atoi(hi); err != nil {
			return false
		}
	}
	return a <= port && port <= b
}

// splitIptablesWords splits an `iptables -S` line into words. iptables
// quotes words with spaces (comments) in double quotes, with \" and \\
// inside.
func splitIptablesWords(line string) []string {
	var words []string
	var w strings.Builder
	inWord, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quoted && c == '\\' && i+1 < len(line):
			i++
			w.WriteByte(line[i])
		case c == '"':
			quoted, inWord = !quoted, true
		case !quoted && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
		default:
			w.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, w.String())
	}
	return words
}

// --- nftables ---

// Where nftables.service reads the ruleset at boot.
const (
	nftRHEL   = "/etc/sysconfig/nftables.conf"
	nftDebian = "/etc/nftables.conf"
)

// nftRule is the rule as nft lists it, which is also how it is added.
func (f *Firewall) nftRule() string {
	r := ""
	if src := f.sourceText(); src != "" {
		r = "ip saddr " + src + " "
	}
	return r + f.proto() + " dport " + strconv.Itoa(f.Port) + " accept"
}

func (f *Firewall) planNFTables(ctx context.Context, h *hostSession, p *firewallPlan) error {
	// The table and chain the distributions' sample configurations
	// define; migrun does not create a firewall from nothing.
	r, err := h.Probe(ctx, executors.Command{Argv: []string{"nft", "-a", "list", "chain", "inet", "filter", "input"}})
	if err != nil {
		return err
	}
	if !r.OK() {
		return fmt.Errorf("no chain input in table inet filter to add the rule to (define them in the nftables configuration, or use another backend): %w", r.Exit)
	}
	rule := f.nftRule()
	rules := nftChainRules(string(r.Stdout))
	there := slices.ContainsFunc(rules, func(r nftListedRule) bool { return r.body == rule })
	if there {
		p.reasons = append(p.reasons, "inet filter input has "+rule)
	} else {
		p.reasons = append(p.reasons, "inet filter input lacks "+rule)
		argv := []string{"nft", "add", "rule", "inet", "filter", "input"}
		note := "at the end of the chain: no drop or reject there catches all traffic"
		// Before a catch-all drop or reject, which would otherwise
		// shadow it; nft insert ... position H goes before handle H.
		if i := slices.IndexFunc(rules, nftListedRule.catchesAll); i >= 0 {
			argv = []string{"nft", "insert", "rule", "inet", "filter", "input", "position", rules[i].handle}
			note = "before `" + rules[i].body + "`"
		}
		p.cmds = append(p.cmds, hostcmd.Cmd{Cmd: executors.Command{Argv: append(argv, strings.Fields(rule)...)}, Note: note})
	}
	if !f.persist() {
		return nil
	}
	file, why, err := f.rulesFile(ctx, h, []rulesFileChoice{
		{nftRHEL, nftRHEL, nftRHEL + " exists: nftables.service loads it at boot"},
		{nftDebian, nftDebian, nftDebian + " exists: nftables.service loads it at boot"},
	}, "nftables")
	if err != nil {
		return err
	}
	saved := false
	if there {
		if saved, err = hostFileHasLine(ctx, h, file, rule); err != nil {
			return err
		}
	}
	if saved {
		p.reasons = append(p.reasons, file+" has it")
		return nil
	}
	p.reasons = append(p.reasons, file+" lacks it")
	// The file replaces the ruleset at boot, and on a restart of
	// nftables.service: flush first, or a restart would double it.
	dump := `{ echo '#!/usr/sbin/nft -f'; echo 'flush ruleset'; nft list ruleset; }`
	p.cmds = append(p.cmds, hostcmd.Cmd{Cmd: executors.Command{Script: rulesSaveScript(dump, file)}, Note: why + "; it becomes the whole current ruleset"})
	return nil
}

// nftListedRule is one rule of `nft -a list chain` output.
type nftListedRule struct {
	body   string // the rule without its counter and handle
	handle string
}

// catchesAll reports whether the rule drops or rejects everything that
// reaches it: nothing but a verdict (and perhaps a counter).
func (r nftListedRule) catchesAll() bool {
	return r.body == "drop" || r.body == "reject" || strings.HasPrefix(r.body, "reject with ")
}

// nftChainRules reads the rules of a listed chain, skipping its header
// (type ... hook ...; policy ...;) and braces.
func nftChainRules(listing string) []nftListedRule {
	var rules []nftListedRule
	for line := range strings.Lines(listing) {
		body, handle, ok := strings.Cut(strings.TrimSpace(line), " # handle ")
		if !ok || strings.HasPrefix(body, "chain ") || strings.HasPrefix(body, "table ") {
			continue
		}
		body = stripNFTCounter(strings.TrimSpace(body))
		rules = append(rules, nftListedRule{body: body, handle: strings.TrimSpace(handle)})
	}
	return rules
}

// stripNFTCounter removes "counter packets N bytes M", which changes as
// traffic flows and says nothing about what the rule matches.
func stripNFTCounter(body string) string {
	w := strings.Fields(body)
	for i := 0; i+4 < len(w); i++ {
		if w[i] == "counter" && w[i+1] == "packets" && w[i+3] == "bytes" {
			w = slices.Delete(w, i, i+5)
			break
		}
	}
	return strings.Join(w, " ")
}
