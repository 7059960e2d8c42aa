package sshconfig

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// match evaluates the criteria of a Match line as ssh's match_cfg_line
// does: every criterion must hold; "all" stands alone; exec runs only when
// the criteria before it held.
func (r *resolver) match(s, file string, n int) (bool, error) {
	bad := func(format string, a ...any) error {
		return &Error{File: file, Line: n, Msg: "Match: " + fmt.Sprintf(format, a...)}
	}
	host := r.hostArg
	switch {
	case r.final:
		host = r.hostName
	case r.hostNameSet:
		h, err := percentExpand(r.hostName, tokens{'h': r.hostArg}, false, nil)
		if err != nil {
			return false, bad("HostName: %v", err)
		}
		host = h
	}
	port := r.port
	if port == 0 {
		port = 22
	}
	ruser := r.user
	if ruser == "" {
		ruser = r.env.LocalUser
	}
	result, attributes := true, 0
	for s != "" {
		attr, rest, ok := strdelim(s)
		if !ok {
			return false, bad("unterminated quote")
		}
		s = rest
		if attr == "" {
			break
		}
		if attr[0] == '#' {
			break
		}
		negate := attr[0] == '!'
		name := strings.ToLower(strings.TrimPrefix(attr, "!"))
		if name == "all" {
			next, _, _ := strdelim(s)
			if attributes > 1 || (s != "" && next != "" && next[0] != '#') {
				return false, bad("'%s' cannot be combined with other Match attributes", attr)
			}
			if result {
				result = !negate
			}
			return result, nil
		}
		attributes++
		if name == "canonical" || name == "final" {
			if name == "final" && !r.final {
				r.wantFinal = true
			}
			if r.final == negate {
				result = false
			}
			continue
		}
		arg, rest, ok := strdelim(s)
		if !ok || s == "" || arg == "" || arg[0] == '#' {
			return false, bad("missing criteria for %s", attr)
		}
		s = rest
		var hit bool
		switch name {
		case "host":
			hit = matchHostname(host, arg)
		case "originalhost":
			hit = matchHostname(r.hostArg, arg)
		case "user":
			hit = matchList(ruser, arg, false) == 1
		case "localuser":
			hit = matchList(r.env.LocalUser, arg, false) == 1
		case "tagged":
			hit = matchList(r.tag, arg, false) == 1
		case "localnetwork":
			h, err := r.onLocalNetwork(arg)
			if err != nil {
				return false, bad("localnetwork %s: %v", arg, err)
			}
			hit = h
		case "exec":
			if !result {
				continue // ssh skips the command once the line cannot match
			}
			h, err := r.exec(arg, host, port, ruser)
			if err != nil {
				return false, bad("exec %q: %v", arg, err)
			}
			hit = h
		default:
			return false, bad("unsupported attribute %s (migrun reads all, canonical, final, host, originalhost, user, localuser, exec, tagged and localnetwork)", attr)
		}
		if hit == negate {
			result = false
		}
	}
	if attributes == 0 {
		return false, bad("one or more attributes required")
	}
	return result, nil
}

// exec runs a Match exec command with its tokens expanded; it matches when
// the command exits 0.
func (r *resolver) exec(command, host string, port int, ruser string) (bool, error) {
	short, _, _ := strings.Cut(r.env.Hostname, ".")
	keyAlias := host
	if r.hostKeyAlias != "" {
		keyAlias = r.hostKeyAlias
	}
	cmd, err := percentExpand(command, tokens{
		'C': connectionHash(r.env.Hostname, host, port, ruser), 'L': short, 'd': r.env.Home,
		'h': host, 'k': keyAlias, 'l': r.env.Hostname, 'n': r.hostArg, 'p': strconv.Itoa(port),
		'r': ruser, 'u': r.env.LocalUser, 'i': strconv.Itoa(r.env.UID),
	}, false, nil)
	if err != nil {
		return false, err
	}
	run := r.env.Exec
	if run == nil {
		run = shellExec
	}
	status, err := run(cmd)
	if err != nil {
		return false, err
	}
	return status == 0, nil
}

// shellExec runs command as ssh does: $SHELL -c, stdin and stdout on
// /dev/null, stderr left to the user.
func shellExec(command string) (int, error) {
	shell := os.Getenv("SHELL")
	if shell == "" {
		shell = "/bin/sh"
	}
	c := exec.Command(shell, "-c", command)
	c.Stderr = os.Stderr
	err := c.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.Exited() {
			return ee.ExitCode(), nil
		}
		return -1, fmt.Errorf("exited abnormally: %v", ee)
	}
	if err != nil {
		return -1, err
	}
	return 0, nil
}

// onLocalNetwork reports whether an address of this machine lies in one
// of the comma-separated CIDR blocks.
func (r *resolver) onLocalNetwork(list string) (bool, error) {
	var prefixes []netip.Prefix
	for _, c := range strings.Split(list, ",") {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			return false, err
		}
		prefixes = append(prefixes, p)
	}
	addrs := r.env.InterfaceAddrs
	if addrs == nil {
		addrs = net.InterfaceAddrs
	}
	list2, err := addrs()
	if err != nil {
		return false, err
	}
	for _, a := range list2 {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		for _, p := range prefixes {
			if p.Contains(ip.Unmap()) {
				return true, nil
			}
		}
	}
	return false, nil
}

// parseJump reads a ProxyJump value ("none", or comma-separated
// [user@]host[:port] and ssh:// URIs) as ssh's parse_jump does: every hop
// is checked; when apply is set, the last hop is the jump host and the
// others are the hops to reach it. A ProxyJump blocks a later
// ProxyCommand.
func (r *resolver) parseJump(s string, apply bool) error {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimRight(s, whitespace)
	if strings.EqualFold(s, "none") {
		if apply {
			r.jumpHost, r.jumpPort = "none", 0
		}
		return nil
	}
	hops := strings.Split(s, ",")
	var last jumpHop
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := parseJumpHop(hops[i])
		if err != nil {
			return err
		}
		if i == len(hops)-1 {
			last = h
		}
	}
	if apply {
		r.jumpUser, r.jumpHost, r.jumpPort = last.user, last.host, last.port
		r.proxyCommand = "none"
		if i := strings.LastIndexByte(s, ','); i > 0 {
			r.jumpExtra = s[:i]
		}
	}
	return nil
}

type jumpHop struct {
	user, host string
	port       int
}

// parseJumpHop reads one "[user@]host[:port]" or
// "ssh://[user@]host[:port]" hop; an IPv6 address goes in brackets.
func parseJumpHop(s string) (jumpHop, error) {
	var h jumpHop
	if rest, ok := strings.CutPrefix(s, "ssh://"); ok {
		s = strings.TrimSuffix(rest, "/")
		if strings.ContainsAny(s, "/") {
			return h, fmt.Errorf("bad ssh:// URI %q", s)
		}
	}
	if at := strings.LastIndexByte(s, '@'); at >= 0 {
		if at == 0 {
			return h, fmt.Errorf("empty user in %q", s)
		}
		h.user, s = s[:at], s[at+1:]
		if i := strings.IndexByte(h.user, ';'); i >= 0 {
			h.user = h.user[:i]
		}
	}
	var port string
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return h, fmt.Errorf("unclosed [ in %q", s)
		}
		h.host, s = s[1:end], s[end+1:]
		if s != "" {
			if s[0] != ':' {
				return h, fmt.Errorf("bad host %q", s)
			}
			port = s[1:]
		}
	} else {
		h.host = s
		if i := strings.IndexAny(s, ":/"); i >= 0 {
			h.host, port = s[:i], s[i+1:]
		}
	}
	if h.host == "" {
		return h, fmt.Errorf("no host")
	}
	if port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p <= 0 || p > 65535 {
			return h, fmt.Errorf("bad port %q", port)
		}
		h.port = p
	}
	return h, nil
}
