package steps

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
)

func readFirewallData(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "firewall", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestFirewallValidate(t *testing.T) {
	tests := []struct {
		name string
		fw   Firewall
		want []string
	}{
		{"port", Firewall{Port: 5432}, nil},
		{"address", Firewall{Port: 5432, Source: "192.0.2.10"}, nil},
		{"network", Firewall{Port: 5432, Proto: "udp", Source: "10.0.0.0/24", Backend: "nftables", Persist: "false"}, nil},
		{"no port", Firewall{}, []string{"port: 0 is not a port number"}},
		{"big port", Firewall{Port: 70000}, []string{"port: 70000 is not a port number"}},
		{"host bits", Firewall{Port: 1, Source: "10.0.0.5/24"}, []string{"source: has host bits set: did you mean 10.0.0.0/24?"}},
		{"ipv6", Firewall{Port: 1, Source: "2001:db8::1"}, []string{"source: IPv6 is not supported"}},
		{"name", Firewall{Port: 1, Source: "db.example.com"}, []string{"source: is not an IPv4 address or network"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.fw.Validate(), tt.want) })
	}
}

func TestIptablesInsertAt(t *testing.T) {
	anyone := netip.Prefix{}
	tests := []struct {
		file       string
		proto      string
		port       int
		src        netip.Prefix
		wantPos    int
		wantBefore string
	}{
		{"iptables-empty.txt", "tcp", 5432, anyone, 1, ""},
		{"iptables-two.txt", "tcp", 5432, anyone, 3, ""},
		{"iptables-reject-at-3.txt", "tcp", 5432, anyone, 3, "-A INPUT -j REJECT --reject-with icmp-host-prohibited"},
		// The guide's -I INPUT 5, computed.
		{"iptables-rhel.txt", "tcp", 5432, anyone, 5, "-A INPUT -j REJECT --reject-with icmp-host-prohibited"},
		// Ten rules: INVALID, one banned address, an interface, udp, a
		// comment holding "-j DROP", ports 1-1024 are all passed by;
		// the multiport range 5000:6000 catches 5432.
		{"iptables-ten.txt", "tcp", 5432, anyone, 9, "-A INPUT -p tcp -m multiport --dports 80,443,5000:6000 -j REJECT --reject-with tcp-reset"},
		{"iptables-ten.txt", "tcp", 443, anyone, 7, "-A INPUT -p tcp -m tcp --dport 1:1024 -j DROP"},
		{"iptables-ten.txt", "udp", 5432, anyone, 5, "-A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable"},
		{"iptables-ten.txt", "tcp", 8080, anyone, 10, "-A INPUT -j REJECT --reject-with icmp-host-prohibited"},
		// The banned address stays banned: its DROP catches all of it.
		{"iptables-ten.txt", "tcp", 8080, netip.MustParsePrefix("203.0.113.7/32"), 3, "-A INPUT -s 203.0.113.7/32 -j DROP"},
		// A network wider than the banned address is not all caught.
		{"iptables-ten.txt", "tcp", 8080, netip.MustParsePrefix("203.0.113.0/24"), 10, "-A INPUT -j REJECT --reject-with icmp-host-prohibited"},
		// Negations and --syn are not understood: not jumped.
		{"iptables-negated.txt", "tcp", 5432, anyone, 3, "-A INPUT -p tcp -m state --state NEW -j DROP"},
	}
	for _, tt := range tests {
		t.Run(tt.file+"/"+tt.proto+"/"+tt.src.String(), func(t *testing.T) {
			pos, before := iptablesInsertAt(readFirewallData(t, tt.file), tt.proto, tt.port, tt.src)
			if pos != tt.wantPos || before != tt.wantBefore {
				t.Errorf("iptablesInsertAt(%d/%s) = %d, %q; want %d, %q", tt.port, tt.proto, pos, before, tt.wantPos, tt.wantBefore)
			}
		})
	}
}

func TestSplitIptablesWords(t *testing.T) {
	got := splitIptablesWords(`-A INPUT -m comment --comment "ssh \"admin\" access" -j ACCEPT`)
	want := []string{"-A", "INPUT", "-m", "comment", "--comment", `ssh "admin" access`, "-j", "ACCEPT"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

const (
	rhelRules = "/etc/sysconfig/iptables"
	rhelSave  = "iptables-save > /etc/sysconfig/iptables.migrun-part && cat /etc/sysconfig/iptables.migrun-part > /etc/sysconfig/iptables && rm -f /etc/sysconfig/iptables.migrun-part"
	debSave   = "iptables-save > /etc/iptables/rules.v4.migrun-part && cat /etc/iptables/rules.v4.migrun-part > /etc/iptables/rules.v4 && rm -f /etc/iptables/rules.v4.migrun-part"
	accept    = "-p tcp -m tcp --dport 5432 -j ACCEPT"
	rhelNote  = " (keep it after a reboot: /etc/sysconfig/iptables exists: iptables-services loads it at boot)"
)

func TestFirewallIptables(t *testing.T) {
	hasIptables := replyOK("command -v iptables", "/usr/sbin/iptables\n")
	rhel, saved := readFirewallData(t, "iptables-rhel.txt"), readFirewallData(t, "iptables-saved.txt")
	tests := []hostKindCase{
		{
			name: "absent: insert before the REJECT, save for iptables-services",
			spec: &Firewall{Port: 5432},
			replies: replies(hasIptables, replyFail("iptables -C", 1, "iptables: Bad rule (does a matching rule exist in that chain?)."),
				replyOK("iptables -S INPUT", rhel), replyOK("test -e "+rhelRules, ""), replyOK("iptables -I", ""), replyOK("iptables-save", "")),
			wantReason: "INPUT lacks -A INPUT " + accept + "; /etc/sysconfig/iptables lacks it",
			wantCheck: []string{"? command -v firewall-cmd", "? command -v iptables", "? iptables -C INPUT " + accept,
				"? iptables -S INPUT", "? test -e /etc/sysconfig/iptables"},
			wantActs: []string{
				"run on db: iptables -I INPUT 5 " + accept + " (before rule 5, -A INPUT -j REJECT --reject-with icmp-host-prohibited)",
				"run on db: " + rhelSave + rhelNote,
			},
			wantApply: []string{"? command -v firewall-cmd", "? command -v iptables", "? iptables -C INPUT " + accept,
				"? iptables -S INPUT", "? test -e /etc/sysconfig/iptables",
				"! iptables -I INPUT 5 " + accept, "! " + rhelSave},
		},
		{
			name:       "present and saved: done",
			spec:       &Firewall{Port: 5432, Backend: "iptables"},
			replies:    replies(replyOK("iptables -C", ""), replyOK("test -e "+rhelRules, ""), replyOK("cat "+rhelRules, saved)),
			wantDone:   true,
			wantReason: "INPUT has -A INPUT " + accept + "; /etc/sysconfig/iptables has it",
			wantApply:  []string{"? iptables -C INPUT " + accept, "? test -e /etc/sysconfig/iptables", "? cat /etc/sysconfig/iptables"},
		},
		{
			name: "present, not saved yet on Debian: only save",
			spec: &Firewall{Port: 5432, Backend: "iptables"},
			replies: replies(replyOK("iptables -C", ""), replyFail("test -e "+rhelRules, 1, ""), replyOK("test -e /etc/iptables", ""),
				replyFail("cat /etc/iptables/rules.v4", 1, "cat: /etc/iptables/rules.v4: No such file or directory"), replyOK("iptables-save", "")),
			wantReason: "/etc/iptables/rules.v4 lacks it",
			wantActs:   []string{"run on db: " + debSave + " (keep it after a reboot: /etc/iptables/ exists: iptables-persistent loads rules.v4 at boot)"},
			wantApply: []string{"? iptables -C INPUT " + accept, "? test -e /etc/sysconfig/iptables", "? test -e /etc/iptables",
				"? cat /etc/iptables/rules.v4", "! " + debSave},
		},
		{
			name: "source, udp, not persisted, empty chain",
			spec: &Firewall{Port: 53, Proto: "udp", Source: "192.0.2.10", Backend: "iptables", Persist: "false"},
			replies: replies(replyFail("iptables -C", 1, ""), replyOK("iptables -S INPUT", "-P INPUT ACCEPT\n"),
				replyOK("iptables -I", "")),
			wantReason: "INPUT lacks -A INPUT -s 192.0.2.10/32 -p udp -m udp --dport 53 -j ACCEPT",
			wantActs: []string{"run on db: iptables -I INPUT 1 -s 192.0.2.10/32 -p udp -m udp --dport 53 -j ACCEPT" +
				" (at the end of INPUT: no REJECT or DROP rule there catches this traffic)"},
			wantApply: []string{"? iptables -C INPUT -s 192.0.2.10/32 -p udp -m udp --dport 53 -j ACCEPT", "? iptables -S INPUT",
				"! iptables -I INPUT 1 -s 192.0.2.10/32 -p udp -m udp --dport 53 -j ACCEPT"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestFirewallIptablesErrors(t *testing.T) {
	ctx := context.Background()
	// Nowhere to persist: fail before changing anything, and say how out.
	h := newScriptedHost(t, replyFail("iptables -C", 1, ""), replyOK("iptables -S INPUT", ""), replyFail("test -e", 1, ""))
	_, err := (&Firewall{Port: 5432, Backend: "iptables"}).Apply(ctx, runOn(h))
	if err == nil || !strings.Contains(err.Error(), "none of /etc/sysconfig/iptables, /etc/iptables exists") ||
		!strings.Contains(err.Error(), "persist: false") || !strings.Contains(err.Error(), "on db") {
		t.Errorf("Apply error = %v, want a clear persistence failure", err)
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("changed the host before failing: %q", c)
	}

	// iptables -C failing other than "no such rule" is an error.
	h = newScriptedHost(t, replyFail("iptables -C", 4, "iptables v1.8.4 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)"))
	_, err = (&Firewall{Port: 5432, Backend: "iptables"}).Check(ctx, runOn(h))
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 4 || !strings.Contains(err.Error(), "you must be root") {
		t.Errorf("Check error = %v, want iptables' ExitError", err)
	}

	// A failing insert keeps its ExitError.
	h = newScriptedHost(t, replyFail("iptables -C", 1, ""), replyOK("iptables -S INPUT", ""), replyFail("iptables -I", 1, "iptables: Index of insertion too big."))
	_, err = (&Firewall{Port: 5432, Backend: "iptables", Persist: "false"}).Apply(ctx, runOn(h))
	if !errors.As(err, &exit) || !strings.HasPrefix(err.Error(), "firewall: open 5432/tcp on db: ") {
		t.Errorf("Apply error = %v, want the ExitError, naming the work and host", err)
	}
}

func TestFirewallFirewalld(t *testing.T) {
	running := replies(replyOK("command -v firewall-cmd", ""), replyOK("firewall-cmd --state", "running\n"))
	rich := `rule family="ipv4" source address="10.0.0.0/24" port port="5432" protocol="tcp" accept`
	tests := []hostKindCase{
		{
			name: "runtime missing, permanent there",
			spec: &Firewall{Port: 5432},
			replies: replies(append(running(), replyOut("firewall-cmd --query-port=5432/tcp", 1, "no\n"),
				replyOK("firewall-cmd --permanent --query-port=5432/tcp", "yes\n"), replyOK("firewall-cmd --add-port", "success\n"))...),
			wantReason: "5432/tcp is not open in the runtime configuration; 5432/tcp is open in the permanent configuration",
			wantCheck: []string{"? command -v firewall-cmd", "? firewall-cmd --state",
				"? firewall-cmd --query-port=5432/tcp", "? firewall-cmd --permanent --query-port=5432/tcp"},
			wantActs: []string{"run on db: firewall-cmd --add-port=5432/tcp"},
		},
		{
			name: "rich rule for a source, both missing",
			spec: &Firewall{Port: 5432, Source: "10.0.0.0/24"},
			replies: replies(append(running(), replyOut("firewall-cmd '--query-rich-rule", 1, "no\n"),
				replyOut("firewall-cmd --permanent '--query-rich-rule", 1, "no\n"),
				replyOK("firewall-cmd '--add-rich-rule", "success\n"), replyOK("firewall-cmd --permanent '--add-rich-rule", "success\n"))...),
			wantReason: rich + " is not open in the runtime configuration",
			wantActs: []string{
				"run on db: firewall-cmd '--add-rich-rule=" + rich + "'",
				"run on db: firewall-cmd --permanent '--add-rich-rule=" + rich + "'",
			},
			wantApply: []string{"? command -v firewall-cmd", "? firewall-cmd --state",
				"? firewall-cmd '--query-rich-rule=" + rich + "'", "? firewall-cmd --permanent '--query-rich-rule=" + rich + "'",
				"! firewall-cmd '--add-rich-rule=" + rich + "'", "! firewall-cmd --permanent '--add-rich-rule=" + rich + "'"},
		},
		{
			name:       "single address, not persisted, open: done",
			spec:       &Firewall{Port: 5432, Source: "192.0.2.10", Backend: "firewalld", Persist: "false"},
			replies:    replies(replyOK("firewall-cmd '--query-rich-rule", "yes\n")),
			wantDone:   true,
			wantReason: `source address="192.0.2.10" port`,
			wantApply:  []string{`? firewall-cmd '--query-rich-rule=rule family="ipv4" source address="192.0.2.10" port port="5432" protocol="tcp" accept'`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// TestFirewallAuto: firewalld installed but stopped falls through to
// iptables, then to nft.
func TestFirewallAuto(t *testing.T) {
	h := newScriptedHost(t, replyOK("command -v firewall-cmd", ""), replyOut("firewall-cmd --state", 252, "not running\n"),
		replyOK("command -v nft", ""), replyOK("nft -a list chain", readFirewallData(t, "nft-present.txt")),
		replyFail("test -e /etc/sysconfig/nftables.conf", 1, ""), replyOK("test -e /etc/nftables.conf", ""),
		replyOK("cat /etc/nftables.conf", readFirewallData(t, "nft-saved.conf")))
	chk, err := (&Firewall{Port: 5432, Source: "10.0.0.0/24"}).Check(context.Background(), runOn(h))
	if err != nil || !chk.Done {
		t.Errorf("Check = %+v, %v; want done through nft", chk, err)
	}
	wantLines(t, "Check", h.lines(), []string{"? command -v firewall-cmd", "? firewall-cmd --state", "? command -v iptables",
		"? command -v nft", "? nft -a list chain inet filter input", "? test -e /etc/sysconfig/nftables.conf",
		"? test -e /etc/nftables.conf", "? cat /etc/nftables.conf"})

	_, err = (&Firewall{Port: 5432}).Check(context.Background(), runOn(newScriptedHost(t)))
	if err == nil || !strings.Contains(err.Error(), "no firewall found") {
		t.Errorf("Check with no firewall: %v", err)
	}
}

func TestFirewallNFTables(t *testing.T) {
	const nftSave = `{ echo '#!/usr/sbin/nft -f'; echo 'flush ruleset'; nft list ruleset; } > /etc/sysconfig/nftables.conf.migrun-part` +
		` && cat /etc/sysconfig/nftables.conf.migrun-part > /etc/sysconfig/nftables.conf && rm -f /etc/sysconfig/nftables.conf.migrun-part`
	reject, present := readFirewallData(t, "nft-reject.txt"), readFirewallData(t, "nft-present.txt")
	tests := []hostKindCase{
		{
			name: "insert before the reject, save",
			spec: &Firewall{Port: 5432, Backend: "nftables"},
			replies: replies(replyOK("nft -a list chain", reject), replyOK("test -e /etc/sysconfig/nftables.conf", ""),
				replyOK("nft insert", ""), replyOK("{ echo", "")),
			wantReason: "inet filter input lacks tcp dport 5432 accept",
			wantActs: []string{
				"run on db: nft insert rule inet filter input position 7 tcp dport 5432 accept (before `reject with icmpx type admin-prohibited`)",
				"run on db: " + nftSave + " (keep it after a reboot: /etc/sysconfig/nftables.conf exists: nftables.service loads it at boot; it becomes the whole current ruleset)",
			},
			wantApply: []string{"? nft -a list chain inet filter input", "? test -e /etc/sysconfig/nftables.conf",
				"! nft insert rule inet filter input position 7 tcp dport 5432 accept", "! " + nftSave},
		},
		{
			name:       "policy drop, no reject: append",
			spec:       &Firewall{Port: 8443, Source: "10.0.0.0/24", Backend: "nftables", Persist: "false"},
			replies:    replies(replyOK("nft -a list chain", present), replyOK("nft add", "")),
			wantReason: "lacks ip saddr 10.0.0.0/24 tcp dport 8443 accept",
			wantActs:   []string{"run on db: nft add rule inet filter input ip saddr 10.0.0.0/24 tcp dport 8443 accept (at the end of the chain: no drop or reject there catches all traffic)"},
			wantApply:  []string{"? nft -a list chain inet filter input", "! nft add rule inet filter input ip saddr 10.0.0.0/24 tcp dport 8443 accept"},
		},
		{
			name:       "present, not persisted: done",
			spec:       &Firewall{Port: 5432, Source: "10.0.0.0/24", Backend: "nftables", Persist: "false"},
			replies:    replies(replyOK("nft -a list chain", present)),
			wantDone:   true,
			wantReason: "inet filter input has ip saddr 10.0.0.0/24 tcp dport 5432 accept",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}

	// No table inet filter: a clear error, nft's own words kept.
	h := newScriptedHost(t, replyFail("nft -a list chain", 1, "Error: No such file or directory\nlist chain inet filter input"))
	_, err := (&Firewall{Port: 5432, Backend: "nftables"}).Check(context.Background(), runOn(h))
	var exit *executors.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "no chain input in table inet filter") {
		t.Errorf("Check error = %v, want a missing chain error with nft's ExitError", err)
	}
}

func TestNFTChainRules(t *testing.T) {
	rules := nftChainRules(readFirewallData(t, "nft-reject.txt"))
	var got []string
	for _, r := range rules {
		got = append(got, r.handle+":"+r.body)
	}
	want := []string{"4:ct state established,related accept", `5:iif "lo" accept`, "6:tcp dport 22 accept",
		"7:reject with icmpx type admin-prohibited"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rules:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestFirewallDryRun: a dry run runs only read-only commands, and Apply
// through it is refused before any change.
func TestFirewallDryRun(t *testing.T) {
	h := newScriptedHost(t, replyFail("iptables -C", 1, ""), replyOK("iptables -S INPUT", ""), replyOK("test -e", ""))
	rt := runOn(executors.ReadOnly(h))
	f := &Firewall{Port: 5432, Backend: "iptables"}
	if _, err := f.Check(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	if acts, err := f.Describe(context.Background(), rt); err != nil || len(acts) != 2 {
		t.Fatalf("Describe = %+v, %v; want insert and save", acts, err)
	}
	if _, err := f.Apply(context.Background(), rt); !errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly: %v, want ErrDryRun", err)
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("dry run changed the host: %q", c)
	}
}
