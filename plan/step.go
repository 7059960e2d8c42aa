package plan

import (
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/steps"
)

// stepKeys are the fields every step may have besides its kind.
var stepKeys = []string{"id", "host", "description", "become", "timeout", "retries", "when", "point_of_no_return"}

// stepList decodes steps or on_failure. ids collects the step ids of both
// lists: the journal keys on them, so they must be unique across the two.
func (l *loader) stepList(n *yaml.Node, section string, ids map[string]*yaml.Node) []Step {
	items, ok := l.sequence(n, section, "")
	if !ok {
		return nil
	}
	out := make([]Step, 0, len(items))
	for i, item := range items {
		out = append(out, l.step(item, fmt.Sprintf("%s[%d]", section, i), section == "on_failure", ids))
	}
	return out
}

// stepFields holds the key nodes of one step, for checks that involve
// several fields.
type stepFields struct {
	host, when *yaml.Node
	kind       *pair
}

// step decodes one step. where ("steps[3]") stands in for the id in
// messages when the step has none; rollback is true in on_failure.
func (l *loader) step(n *yaml.Node, where string, rollback bool, ids map[string]*yaml.Node) Step {
	n = deref(n)
	st := Step{Line: n.Line, Column: n.Column}
	before := len(l.errs)
	pairs, ok := l.mapping(n, "", where)
	if !ok {
		return st
	}
	// The id comes first whatever its place, so every message can name
	// the step, even those about the mapping found before the id was.
	id := where
	for _, p := range pairs {
		if p.key == "id" {
			st.ID = l.stepID(p, where, ids)
			if st.ID != "" {
				id = st.ID
			}
		}
	}
	for _, e := range l.errs[before:] {
		e.Step = id
	}
	if st.ID == "" && !hasKey(pairs, "id") {
		l.errorf(n, id, "missing id")
	}

	var f stepFields
	for _, p := range pairs {
		switch p.key {
		case "id":
		case "host":
			f.host = p.v
			if s, ok := l.plainText(p.v, "host", id); ok && s == "" {
				l.errorf(deref(p.v), id, "host: must not be empty")
			} else {
				st.Host = s
			}
		case "description":
			st.Description, _ = l.plainText(p.v, "description", id)
		case "become":
			if s, ok := l.plainText(p.v, "become", id); ok && s == "" {
				l.errorf(deref(p.v), id, "become: must not be empty (leave it out to run as the login user)")
			} else {
				st.Become = s
			}
		case "timeout":
			st.Timeout = l.timeout(p.v, id)
		case "retries":
			if r, ok := l.integer(p.v, "retries", id); ok {
				if r < 0 {
					l.errorf(deref(p.v), id, "retries: %d is negative", r)
				}
				st.Retries = r
			}
		case "when":
			f.when = p.v
			st.When, _ = l.text(p.v, "when", id)
		case "point_of_no_return":
			st.PointOfNoReturn, _ = l.boolean(p.v, "point_of_no_return", id)
			if rollback {
				l.errorf(p.k, id, "point_of_no_return: only steps have one; on_failure is what it stops")
			}
		default:
			l.stepKind(p, &f, id)
		}
	}

	if f.host != nil && st.Host != "" && !l.knownHost(st.Host) {
		l.errorf(deref(f.host), id, "host: unknown host %q%s", st.Host, didYouMean(st.Host, l.hostNames()))
	}
	if f.when != nil {
		l.checkWhen(f.when, st.When, id)
	}
	if f.kind == nil {
		l.errorf(n, id, "no step kind; give one of: %s", strings.Join(l.kindNames(), ", "))
		return st
	}
	l.stepSpec(&st, f, id)
	return st
}

func hasKey(pairs []pair, key string) bool {
	for _, p := range pairs {
		if p.key == key {
			return true
		}
	}
	return false
}

// stepKind handles a key that is not a common step field: a kind, the
// second kind of a step, or a typo.
func (l *loader) stepKind(p pair, f *stepFields, id string) {
	if _, ok := l.reg.Lookup(p.key); !ok {
		known := append(append([]string(nil), stepKeys...), l.kindNames()...)
		hint := didYouMean(p.key, known)
		if hint == "" {
			hint = fmt.Sprintf(" (step fields: %s; kinds: %s)", strings.Join(stepKeys, ", "), strings.Join(l.kindNames(), ", "))
		}
		l.errorf(p.k, id, "unknown key %q%s", p.key, hint)
		return
	}
	if f.kind != nil {
		l.errorf(p.k, id, "%s: a step has exactly one kind and this one already is %s (line %d); split it into two steps", p.key, f.kind.key, f.kind.k.Line)
		return
	}
	f.kind = &p
}

// stepSpec decodes and validates the kind body, then checks the hosts the
// step touches.
func (l *loader) stepSpec(st *Step, f stepFields, id string) {
	kind, _ := l.reg.Lookup(f.kind.key)
	st.Kind = kind.Name
	spec, keys, ok := l.decodeSpec(kind, f.kind.k, f.kind.v, id)
	st.Spec = spec
	if kind.NeedsHost && f.host == nil {
		l.errorf(f.kind.k, id, "%s needs host: (the plan host it runs on)", kind.Name)
	}
	if !ok {
		// Validate and Hosts may assume a well-formed spec.
		return
	}
	problems := spec.Validate()
	for _, p := range problems {
		path := join(kind.Name, p.Field)
		l.errorf(problemNode(keys, p.Field, f.kind.k), id, "%s: %s", path, p.Message)
	}
	if len(problems) > 0 {
		return
	}
	for _, h := range spec.Hosts(st.Host) {
		if h == "" || h == st.Host || l.knownHost(h) {
			continue // "" is the workstation; st.Host was checked above
		}
		rel := fieldHolding(spec, h)
		l.errorf(problemNode(keys, rel, f.kind.k), id, "%s: unknown host %q%s", join(kind.Name, rel), h, didYouMean(h, l.hostNames()))
	}
}

// problemNode finds the key node of a field path such as "owner.name" or
// "argv[2]", falling back to an enclosing field and then to the kind key.
func problemNode(keys map[string]*yaml.Node, field string, kindKey *yaml.Node) *yaml.Node {
	if i := strings.IndexByte(field, '['); i >= 0 {
		field = field[:i]
	}
	for field != "" {
		if n := keys[field]; n != nil {
			return n
		}
		i := strings.LastIndexByte(field, '.')
		if i < 0 {
			break
		}
		field = field[:i]
	}
	return kindKey
}

// fieldHolding guesses which field of spec names host h: the first string
// that is h or starts with "h:" (HOST:PATH). Hosts only returns names, so
// this is how an unknown host gets the line of the field that holds it.
func fieldHolding(spec steps.Spec, h string) string {
	found := ""
	specStrings(spec, func(rel, s string) {
		if found == "" && (s == h || strings.HasPrefix(s, h+":")) {
			found = rel
		}
	})
	return found
}

func (l *loader) stepID(p pair, where string, ids map[string]*yaml.Node) string {
	id, ok := l.text(p.v, "id", where)
	if !ok {
		return ""
	}
	v := deref(p.v)
	switch {
	case id == "":
		l.errorf(v, where, "id: must not be empty")
		return ""
	case !idRE.MatchString(id):
		l.errorf(v, id, "id: use lowercase letters, digits and -")
	}
	if first, dup := ids[id]; dup {
		l.errorf(v, id, "duplicate step id (first at line %d)", first.Line)
	} else {
		ids[id] = v
	}
	return id
}

func (l *loader) timeout(n *yaml.Node, id string) time.Duration {
	n = deref(n)
	if tag := n.ShortTag(); n.Kind == yaml.ScalarNode && (tag == "!!int" || tag == "!!float") {
		l.errorf(n, id, "timeout: %s has no unit; write it like \"%ss\" or \"10m\"", n.Value, n.Value)
		return 0
	}
	s, ok := l.expand(n, "timeout", id, l.refs.lookupVar)
	if !ok {
		return 0
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		l.errorf(n, id, "timeout: %q is not a duration like \"30s\" or \"10m\"", s)
	case d <= 0:
		l.errorf(n, id, "timeout: %q must be positive", s)
	}
	return d
}

// WhenTerm is one condition of a `when:`: a var, negated or not.
type WhenTerm struct {
	Var    string
	Negate bool
}

// WhenTerms splits a `when:` into its conditions: "stream && !replicate"
// holds when stream is true and replicate is false. Only && is offered:
// plans choose between a few alternatives, and a full expression language
// would make a step's condition harder to read than the steps themselves.
func WhenTerms(when string) []WhenTerm {
	var terms []WhenTerm
	for _, t := range strings.Split(when, "&&") {
		name, negate := strings.CutPrefix(strings.TrimSpace(t), "!")
		terms = append(terms, WhenTerm{Var: strings.TrimSpace(name), Negate: negate})
	}
	return terms
}

// WhenHolds evaluates when against vars (the loader checked every var
// named is a bool word). "" always holds.
func WhenHolds(when string, vars map[string]string) bool {
	if when == "" {
		return true
	}
	for _, t := range WhenTerms(when) {
		v, _ := ParseBool(vars[t.Var])
		if v == t.Negate {
			return false
		}
	}
	return true
}

// checkWhen checks `when:` now, so a typo in a var name or a value the
// runner cannot read as a bool fails the load instead of skipping a step.
func (l *loader) checkWhen(n *yaml.Node, when, id string) {
	for _, t := range WhenTerms(when) {
		l.checkWhenTerm(n, when, t.Var, id)
	}
}

func (l *loader) checkWhenTerm(n *yaml.Node, when, name, id string) {
	n = deref(n)
	switch val, isVar := l.refs.vars[name]; {
	case l.refs.detected[name]:
		// Found when a run starts.
	case !varNameRE.MatchString(name):
		l.errorf(n, id, "when: %q: want a var name, !name to negate, and && between them", when)
	case l.refs.secrets[name]:
		l.errorf(n, id, "when: %q is a secret; when takes a var", name)
	case !isVar:
		if len(l.refs.detected) == 0 {
			l.errorf(n, id, "when: no var %q%s", name, didYouMean(name, keysOf(l.refs.vars)))
		} else {
			l.errorf(n, id, "when: no var or detection %q%s", name, didYouMean(name, append(keysOf(l.refs.vars), keysOf(l.refs.detected)...)))
		}
	case l.refs.tainted[name]:
		// Reported where the var is defined.
	default:
		if _, ok := ParseBool(val); !ok {
			l.errorf(n, id, "when: var %s is %q; want true, false, yes, no, 1 or 0", name, val)
		}
	}
}

// ParseBool reads the value of a var used by `when:`: true, false, yes, no,
// 1 or 0, in any case. ok is false for anything else. The loader refuses
// other values, so the runner can rely on ok.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(s) {
	case "true", "yes", "1":
		return true, true
	case "false", "no", "0":
		return false, true
	}
	return false, false
}

func (l *loader) knownHost(name string) bool {
	_, ok := l.refs.hosts[name]
	return ok || name == workstation
}

func (l *loader) hostNames() []string { return keysOf(l.refs.hosts) }

func (l *loader) kindNames() []string {
	var names []string
	for _, k := range l.reg.Kinds() {
		names = append(names, k.Name)
	}
	return names
}

func keysOf[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
