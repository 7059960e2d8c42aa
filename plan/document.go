package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/internal/secret"
)

var topKeys = []string{"version", "name", "description", "vars", "secrets", "hosts", "detect", "steps", "on_failure"}

// document decodes the plan's top level. The sections are taken in the
// order they depend on each other (vars, then secrets and hosts, which use
// vars, then steps, which use all three), whatever their order in the file.
func (l *loader) document(root *yaml.Node, overrides map[string]string) *Plan {
	pairs, ok := l.mapping(root, "", "")
	if !ok {
		return nil
	}
	top := map[string]pair{}
	for _, p := range pairs {
		if !slices.Contains(topKeys, p.key) {
			l.unknownKey(p, "", "", topKeys)
			continue
		}
		top[p.key] = p
	}
	for _, key := range []string{"version", "name", "steps"} {
		if _, ok := top[key]; !ok {
			l.errorf(deref(root), "", "missing required key %q", key)
		}
	}

	p := &Plan{File: l.file}
	if v, ok := top["version"]; ok {
		l.version(v.v)
	}
	if v, ok := top["name"]; ok {
		if name, ok := l.text(v.v, "name", ""); ok {
			if !idRE.MatchString(name) {
				l.errorf(deref(v.v), "", "name: %q: use lowercase letters, digits and - (it names the journal)", name)
			}
			p.Name = name
		}
	}

	defs := l.readVars(top["vars"].v)
	l.readSecretNames(top["secrets"].v, defs)
	l.applyOverrides(defs, overrides)
	l.resolveVars(defs)
	p.Vars = l.refs.vars
	p.Hosts = l.hosts(top["hosts"].v)
	l.refs.hosts = p.Hosts
	p.Secrets = l.secretSources(top["secrets"].v)
	p.Detect = l.detections(top["detect"].v)
	l.refs.detected = p.DetectionNames()

	if v, ok := top["description"]; ok {
		p.Description, _ = l.plainText(v.v, "description", "")
	}
	ids := map[string]*yaml.Node{}
	if v, ok := top["steps"]; ok {
		p.Steps = l.stepList(v.v, "steps", ids)
		if n := deref(v.v); n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
			l.errorf(n, "", "steps: the plan has no steps")
		}
	}
	if v, ok := top["on_failure"]; ok && !isNull(deref(v.v)) {
		p.OnFailure = l.stepList(v.v, "on_failure", ids)
	}
	return p
}

func (l *loader) version(n *yaml.Node) {
	v, ok := l.integer(n, "version", "")
	if ok && v != Version {
		l.errorf(deref(n), "", "version: %d is not supported; this migrun reads version %d", v, Version)
	}
}

// section returns the pairs of an optional top-level mapping; a missing or
// empty section (`vars:` with everything commented out) has none.
func (l *loader) section(n *yaml.Node, name string) []pair {
	if n == nil || isNull(deref(n)) {
		return nil
	}
	pairs, _ := l.mapping(n, name, "")
	return pairs
}

// varDef is one var before resolution.
type varDef struct {
	raw      string
	node     *yaml.Node
	override bool // raw came from --var and is taken literally
}

func (l *loader) readVars(n *yaml.Node) map[string]*varDef {
	defs := map[string]*varDef{}
	for _, p := range l.section(n, "vars") {
		path := "vars." + p.key
		if !varNameRE.MatchString(p.key) {
			l.errorf(p.k, "", "%s: bad var name; use letters, digits and _, not starting with a digit", path)
			continue
		}
		raw, ok := l.text(p.v, path, "")
		if !ok {
			continue
		}
		defs[p.key] = &varDef{raw: raw, node: p.v}
	}
	return defs
}

// readSecretNames registers the secret names first: vars must know them to
// refuse referring to one.
func (l *loader) readSecretNames(n *yaml.Node, vars map[string]*varDef) {
	l.refs.secrets = map[string]bool{}
	for _, p := range l.section(n, "secrets") {
		switch {
		case !varNameRE.MatchString(p.key):
			l.errorf(p.k, "", "secrets.%s: bad secret name; use letters, digits and _, not starting with a digit", p.key)
		case vars[p.key] != nil:
			l.errorf(p.k, "", "secrets.%s: %s is also a var (line %d); a name is either a var or a secret", p.key, p.key, vars[p.key].node.Line)
		default:
			l.refs.secrets[p.key] = true
		}
	}
}

// applyOverrides replaces var values by --var ones. An override is taken
// literally: the user typed the final value, and a "$" in it is theirs.
func (l *loader) applyOverrides(defs map[string]*varDef, overrides map[string]string) {
	for _, name := range slices.Sorted(maps.Keys(overrides)) {
		d, ok := defs[name]
		if !ok {
			// Typo protection: an unknown --var would silently do nothing.
			l.errorf(nil, "", "--var %s: the plan has no var %q%s", name, name, didYouMean(name, keysOf(defs)))
			continue
		}
		if secret.Contains(overrides[name]) {
			l.errorf(nil, "", "--var %s: holds the control character U+001E, which migrun reserves for secret placeholders", name)
			continue
		}
		d.raw, d.override = overrides[name], true
	}
}

// varResolver resolves vars that refer to other vars, depth first, and
// reports cycles.
type varResolver struct {
	l        *loader
	defs     map[string]*varDef
	visiting map[string]bool
	stack    []string
}

func (l *loader) resolveVars(defs map[string]*varDef) {
	l.refs.vars = make(map[string]string, len(defs))
	l.refs.tainted = map[string]bool{}
	r := &varResolver{l: l, defs: defs, visiting: map[string]bool{}}
	for _, name := range slices.Sorted(maps.Keys(defs)) {
		r.resolve(name)
	}
}

func (r *varResolver) resolve(name string) {
	if _, done := r.l.refs.vars[name]; done {
		return
	}
	d := r.defs[name]
	if d.override {
		r.l.refs.vars[name] = d.raw
		return
	}
	r.visiting[name] = true
	r.stack = append(r.stack, name)
	val, problems := interpolate(d.raw, r.lookup)
	for _, p := range problems {
		r.l.errorf(deref(d.node), "", "vars.%s: %s", name, p)
	}
	if len(problems) > 0 {
		r.l.refs.tainted[name] = true
	}
	r.stack = r.stack[:len(r.stack)-1]
	delete(r.visiting, name)
	r.l.refs.vars[name] = val
}

// lookup resolves a reference inside the value of the var on top of the
// stack.
func (r *varResolver) lookup(ref string) (string, error) {
	current := r.stack[len(r.stack)-1]
	if strings.HasPrefix(ref, "hosts.") {
		return "", fmt.Errorf("${%s}: vars cannot refer to hosts (host fields are built from vars)", ref)
	}
	if err := checkRefName(ref); err != nil {
		return "", err
	}
	if r.l.refs.secrets[ref] {
		return "", fmt.Errorf("${%s}: vars cannot hold secrets, they are printed and stored in plain text; use the secret directly in a step field that takes secrets", ref)
	}
	if _, ok := r.defs[ref]; !ok {
		known := keysOf(r.defs)
		return "", fmt.Errorf("undefined variable %q in ${%s}%s", ref, ref, didYouMean(ref, known))
	}
	if r.visiting[ref] {
		i := slices.Index(r.stack, ref)
		cycle := append(slices.Clone(r.stack[i:]), ref)
		return "", fmt.Errorf("${%s} makes a cycle: %s", ref, strings.Join(cycle, " -> "))
	}
	r.resolve(ref)
	if r.l.refs.tainted[ref] {
		// Reported where ref is defined; the user of a broken var only
		// inherits the brokenness, silently.
		r.l.refs.tainted[current] = true
		return "", nil
	}
	return r.l.refs.vars[ref], nil
}

// secretSources decodes the secrets section (names were read already).
func (l *loader) secretSources(n *yaml.Node) map[string]SecretSource {
	out := map[string]SecretSource{}
	for _, p := range l.section(n, "secrets") {
		if !l.refs.secrets[p.key] {
			continue // bad name, reported
		}
		path := "secrets." + p.key
		pairs, ok := l.mapping(p.v, path, "")
		if !ok {
			continue
		}
		var src SecretSource
		var set []string
		keys := map[string]*yaml.Node{}
		for _, q := range pairs {
			var dst *string
			switch q.key {
			case "env":
				dst = &src.Env
			case "file":
				dst = &src.File
			case "prompt":
				dst = &src.Prompt
			case "host":
				dst = &src.Host
			case "key":
				dst = &src.Key
			default:
				l.unknownKey(q, path, "", []string{"env", "file", "prompt", "host", "key"})
				continue
			}
			keys[q.key] = q.k
			if q.key != "host" && q.key != "key" {
				set = append(set, q.key)
			}
			s, ok := l.expand(q.v, join(path, q.key), "", l.refs.lookupVar)
			switch {
			case !ok:
			case s == "":
				l.errorf(deref(q.v), "", "%s.%s: must not be empty", path, q.key)
			case q.key == "env" && !varNameRE.MatchString(s):
				l.errorf(deref(q.v), "", "%s.env: %q is not an environment variable name", path, s)
			case q.key == "key" && !varNameRE.MatchString(s):
				l.errorf(deref(q.v), "", "%s.key: %q is not a variable name", path, s)
			case q.key == "host" && (!l.knownHost(s) || s == workstation):
				l.errorf(deref(q.v), "", "%s.host: no host %q%s", path, s, didYouMean(s, l.hostNames()))
			}
			*dst = s
		}
		switch {
		case len(set) == 0:
			l.errorf(p.k, "", "%s: say where the value comes from: env, file or prompt", path)
		case len(set) > 1:
			l.errorf(p.k, "", "%s: has %s; give exactly one of env, file or prompt", path, strings.Join(set, " and "))
		}
		for _, k := range []string{"host", "key"} {
			if keys[k] != nil && keys["file"] == nil {
				l.errorf(keys[k], "", "%s.%s: goes with file", path, k)
			}
		}
		if src.Host != "" && src.File != "" && !strings.HasPrefix(src.File, "/") {
			l.errorf(keys["file"], "", "%s.file: a file on host %s needs an absolute path", path, src.Host)
		}
		out[p.key] = src
	}
	return out
}
