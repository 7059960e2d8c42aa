package steps

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// firewall with nftables: the rule added to the inet filter input chain
// unless it is there, before a drop or reject that catches all traffic,
// and the ruleset saved where nftables.service reads it at boot.

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
	// The file replaces the ruleset at boot, and on a restart of
	// nftables.service: flush first, or a restart would double it.
	dump := `{ echo '#!/usr/sbin/nft -f'; echo 'flush ruleset'; nft list ruleset; }`
	return f.planSave(ctx, h, p, []rulesFileChoice{
		{nftRHEL, nftRHEL, nftRHEL + " exists: nftables.service loads it at boot"},
		{nftDebian, nftDebian, nftDebian + " exists: nftables.service loads it at boot"},
	}, "nftables", there, rule, dump, "; it becomes the whole current ruleset")
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
