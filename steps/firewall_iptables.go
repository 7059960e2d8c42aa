package steps

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// firewall with iptables: the ACCEPT inserted before the first DROP or
// REJECT that catches all of its traffic, and the rules saved where the
// host restores them at boot (iptables-services or iptables-persistent).

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
	return f.planSave(ctx, h, p, []rulesFileChoice{
		{iptablesRHEL, iptablesRHEL, iptablesRHEL + " exists: iptables-services loads it at boot"},
		{iptablesDebDir, iptablesDeb, iptablesDebDir + "/ exists: iptables-persistent loads rules.v4 at boot"},
	}, "iptables-services (RHEL) or iptables-persistent (Debian)", there, line, "iptables-save", "")
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
