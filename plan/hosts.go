package plan

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

var hostKeys = []string{"local", "address", "user", "port", "identity_file", "jump", "become"}

// hosts decodes the hosts section. Host fields may use vars only: hosts
// are settled before steps, and a secret there would end up in ssh argv or
// on screen.
func (l *loader) hosts(n *yaml.Node) map[string]Host {
	out := map[string]Host{}
	for _, p := range l.section(n, "hosts") {
		path := "hosts." + p.key
		switch {
		case p.key == workstation:
			l.errorf(p.k, "", "%s: the name %q is reserved for the machine migrun runs on; name the host differently (or use local: true)", path, workstation)
			continue
		case !hostNameRE.MatchString(p.key):
			l.errorf(p.k, "", "%s: bad host name; use lowercase letters, digits, _ and -", path)
			continue
		}
		// A host with problems is still known, so steps that use it do
		// not add "unknown host" to the real problem.
		out[p.key] = l.host(p, path)
	}
	l.jumpsThroughHosts(out)
	return out
}

// jumpsThroughHosts lets a host's jump name another host of the plan
// ("jump: engine"): it becomes that host's [user@]address[:port], after
// that host's own jump, as ssh -J chains them. The plan's name wins over a
// DNS name spelled the same.
func (l *loader) jumpsThroughHosts(hosts map[string]Host) {
	spec := func(h Host) string {
		s := h.Address
		if h.User != "" {
			s = h.User + "@" + s
		}
		if h.Port != 0 {
			s += ":" + strconv.Itoa(h.Port)
		}
		return s
	}
	// resolve returns name's jump chain, recording in keys the identity
	// file of every hop that is a plan host with one.
	var resolve func(name string, seen []string, keys map[string]string) (string, bool)
	resolve = func(name string, seen []string, keys map[string]string) (string, bool) {
		h := hosts[name]
		j, isHost := hosts[h.Jump]
		if !isHost {
			return h.Jump, true // an address, "none" or nothing
		}
		first := hosts[seen[0]]
		if slices.Contains(seen, h.Jump) {
			l.errs = append(l.errs, (&Error{File: l.file, Line: first.Line, Column: first.Column,
				Msg: fmt.Sprintf("hosts.%s.jump: the hosts jump through each other in a loop (%s)", seen[0], strings.Join(append(seen, h.Jump), " -> "))}).withField())
			return "", false
		}
		if j.Local {
			l.errs = append(l.errs, (&Error{File: l.file, Line: h.Line, Column: h.Column,
				Msg: fmt.Sprintf("hosts.%s.jump: %q is the machine migrun runs on (local: true); a jump host is reached over SSH", name, h.Jump)}).withField())
			return "", false
		}
		before, ok := resolve(h.Jump, append(seen, h.Jump), keys)
		if !ok {
			return "", false
		}
		if j.IdentityFile != "" {
			keys[spec(j)] = j.IdentityFile
		}
		if before != "" && before != "none" {
			return before + "," + spec(j), true
		}
		return spec(j), true
	}
	resolved := map[string]Host{}
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		if _, isHost := hosts[hosts[name].Jump]; isHost {
			keys := map[string]string{}
			if j, ok := resolve(name, []string{name}, keys); ok {
				h := hosts[name]
				h.Jump = j
				if len(keys) > 0 {
					h.JumpIdentityFiles = keys
				}
				resolved[name] = h
			}
		}
	}
	maps.Copy(hosts, resolved)
}

func (l *loader) host(p pair, path string) Host {
	h := Host{Name: p.key, Line: p.k.Line, Column: p.k.Column, Become: "sudo"}
	pairs, ok := l.mapping(p.v, path, "")
	if !ok {
		return h
	}
	keys := map[string]*yaml.Node{}
	for _, q := range pairs {
		fpath := join(path, q.key)
		keys[q.key] = q.k
		switch q.key {
		case "local":
			h.Local, _ = l.boolean(q.v, fpath, "")
		case "port":
			if port, ok := l.integer(q.v, fpath, ""); ok {
				if port < 1 || port > 65535 {
					l.errorf(deref(q.v), "", "%s: %d is not a TCP port (1-65535)", fpath, port)
				}
				h.Port = port
			}
		case "address", "user", "identity_file", "jump", "become":
			s, ok := l.expand(q.v, fpath, "", l.refs.lookupVar)
			if ok {
				l.checkHostField(q, fpath, s)
			}
			*hostField(&h, q.key) = s
		default:
			l.unknownKey(q, path, "", hostKeys)
		}
	}
	if h.Local {
		if k := keys["address"]; k != nil {
			l.errorf(k, "", "%s: local: true and address exclude each other", path)
		}
		// The remaining connection settings would be silently ignored.
		for _, key := range []string{"user", "port", "identity_file", "jump"} {
			if k := keys[key]; k != nil {
				l.errorf(k, "", "%s.%s: means nothing for a local host", path, key)
			}
		}
	} else if keys["address"] == nil {
		l.errorf(p.k, "", "%s: needs address (or local: true for the workstation)", path)
	}
	return h
}

func hostField(h *Host, key string) *string {
	switch key {
	case "address":
		return &h.Address
	case "user":
		return &h.User
	case "identity_file":
		return &h.IdentityFile
	case "jump":
		return &h.Jump
	}
	return &h.Become
}

// checkHostField refuses values that would go wrong later, in ssh, where
// the message would no longer say which line of the plan is at fault.
func (l *loader) checkHostField(q pair, path, s string) {
	n := deref(q.v)
	switch {
	case q.key == "become":
		if s != "sudo" && s != "su" {
			l.errorf(n, "", "%s: %q is not sudo or su", path, s)
		}
	case s == "":
		l.errorf(n, "", "%s: must not be empty", path)
	case strings.HasPrefix(s, "-"):
		l.errorf(n, "", "%s: %q starts with \"-\" and would read as an option", path, s)
	case q.key != "identity_file" && strings.ContainsAny(s, " \t\r\n"):
		l.errorf(n, "", "%s: %q contains white space", path, s)
	case q.key == "address" && strings.Contains(s, "@"):
		l.errorf(n, "", "%s: %q: give the user in user:, not in the address", path, s)
	case q.key == "address" && strings.Count(s, ":") == 1:
		// One colon is host:port; IPv6 addresses have several.
		l.errorf(n, "", "%s: %q: give the port in port:, not in the address", path, s)
	}
}
