package plan

import (
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps"
)

// loader holds the state of one Parse: the problems found so far and what
// ${...} may refer to. Decoding never stops at a problem; it records it and
// goes on with the next key, so one run reports everything.
type loader struct {
	file string
	reg  *steps.Registry
	errs Errors
	refs refs
}

// errorf records a problem at node n (nil: no position) in step (may be "").
func (l *loader) errorf(n *yaml.Node, step, format string, args ...any) {
	e := &Error{File: l.file, Step: step, Msg: fmt.Sprintf(format, args...)}
	if n != nil {
		e.Line, e.Column = n.Line, n.Column
	}
	l.errs = append(l.errs, e.withField())
}

// deref follows a YAML alias to its anchored node. Aliases are allowed as a
// way to repeat a block; the decoder never recurses deeper than the schema,
// so even an alias inside its own anchor cannot make it loop.
func deref(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// what names a node's type for "want X, got Y" messages.
func what(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing"
		case "!!bool":
			return "a bool"
		case "!!int", "!!float":
			return "a number"
		}
		return "a string"
	}
	return "an unexpected YAML node"
}

// prefix renders path for the start of a message ("" when there is none).
func prefix(path string) string {
	if path == "" {
		return ""
	}
	return path + ": "
}

// pair is one key and its value in a mapping.
type pair struct {
	key  string
	k, v *yaml.Node
}

// mapping returns the pairs of mapping n in order. A node that is not a
// mapping, a key that is not a string, a merge key and a repeated key are
// reported (the repeat is dropped); ok is false only when n is not a mapping.
func (l *loader) mapping(n *yaml.Node, path, step string) (pairs []pair, ok bool) {
	n = deref(n)
	if n.Kind != yaml.MappingNode {
		l.errorf(n, step, "%swant a mapping, got %s", prefix(path), what(n))
		return nil, false
	}
	first := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		switch {
		case k.Kind != yaml.ScalarNode:
			l.errorf(k, step, "%skeys must be strings, got %s", prefix(path), what(k))
			continue
		case k.ShortTag() == "!!merge":
			// Merging hides where a key came from and defeats the
			// duplicate check; vars and aliases cover the need.
			l.errorf(k, step, "%smerge keys (<<) are not supported; repeat the keys, or use an alias for the whole value", prefix(path))
			continue
		case isNull(k) || k.Value == "":
			l.errorf(k, step, "%sempty key", prefix(path))
			continue
		}
		if f, dup := first[k.Value]; dup {
			l.errorf(k, step, "%sduplicate key %q (first at line %d)", prefix(path), k.Value, f.Line)
			continue
		}
		first[k.Value] = k
		pairs = append(pairs, pair{key: k.Value, k: k, v: v})
	}
	return pairs, true
}

// sequence returns the items of list n.
func (l *loader) sequence(n *yaml.Node, path, step string) ([]*yaml.Node, bool) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, step, "%swant a list, got %s", prefix(path), what(n))
		return nil, false
	}
	items := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		items[i] = deref(c)
	}
	return items, true
}

// text returns a scalar's text as written. Numbers and bools are accepted
// and kept verbatim, so `mode: 0600` stays "0600" instead of becoming 384.
func (l *loader) text(n *yaml.Node, path, step string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, step, "%swant a string, got %s", prefix(path), what(n))
		return "", false
	}
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
	case "!!null":
		l.errorf(n, step, `%sno value; write "" for an empty string`, prefix(path))
		return "", false
	default:
		l.errorf(n, step, "%sunsupported YAML tag %s", prefix(path), tag)
		return "", false
	}
	if secret.Contains(n.Value) {
		l.errorf(n, step, "%sholds the control character U+001E, which migrun reserves for secret placeholders", prefix(path))
		return "", false
	}
	return n.Value, true
}

// expand decodes a scalar and interpolates it with lookup.
func (l *loader) expand(n *yaml.Node, path, step string, lookup func(string) (string, error)) (string, bool) {
	n = deref(n)
	raw, ok := l.text(n, path, step)
	if !ok {
		return "", false
	}
	out, problems := interpolate(raw, lookup)
	for _, p := range problems {
		l.errorf(n, step, "%s%s", prefix(path), p)
	}
	return out, len(problems) == 0
}

// plainText is expand for step fields that are printed or name things
// (description, become, host): vars and ${hosts...}, no secrets.
func (l *loader) plainText(n *yaml.Node, path, step string) (string, bool) {
	n = deref(n)
	out, ok := l.expand(n, path, step, l.refs.lookup)
	for _, name := range secret.Names(out) {
		l.errorf(n, step, "%ssecret %q would be printed in plain text here; only step fields that take secrets may use one", prefix(path), name)
		ok = false
	}
	return out, ok
}

// interpolatedScalar expands a quoted scalar such as "${db_port}" that
// stands for an integer or a bool, so plans can take numbers and flags
// from vars. It returns the expanded text and whether n was one.
func (l *loader) interpolatedScalar(n *yaml.Node, path, step string) (text string, isRef, ok bool) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || !strings.Contains(n.Value, "${") {
		return "", false, false
	}
	text, ok = l.plainText(n, path, step)
	return strings.TrimSpace(text), true, ok
}

func (l *loader) integer(n *yaml.Node, path, step string) (int, bool) {
	n = deref(n)
	if text, isRef, ok := l.interpolatedScalar(n, path, step); isRef {
		if !ok {
			return 0, false
		}
		i, err := strconv.Atoi(text)
		if err != nil {
			l.errorf(n, step, "%swant an integer, got %q from %s", prefix(path), text, n.Value)
			return 0, false
		}
		return i, true
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		l.errorf(n, step, "%swant an integer, got %s", prefix(path), what(n))
		return 0, false
	}
	var i int
	if err := n.Decode(&i); err != nil {
		l.errorf(n, step, "%s%q is not an integer that fits", prefix(path), n.Value)
		return 0, false
	}
	return i, true
}

func (l *loader) boolean(n *yaml.Node, path, step string) (bool, bool) {
	n = deref(n)
	if text, isRef, ok := l.interpolatedScalar(n, path, step); isRef {
		if !ok {
			return false, false
		}
		b, known := ParseBool(text)
		if !known {
			l.errorf(n, step, "%swant true or false, got %q from %s", prefix(path), text, n.Value)
		}
		return b, known
	}
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		l.errorf(n, step, "%swant true or false, got %s", prefix(path), what(n))
		return false, false
	}
	b, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		l.errorf(n, step, "%swant true or false, got %q", prefix(path), n.Value)
		return false, false
	}
	return b, true
}

// unknownKey reports key p, which is not one of known.
func (l *loader) unknownKey(p pair, path, step string, known []string) {
	hint := didYouMean(p.key, known)
	if hint == "" {
		hint = " (known keys: " + strings.Join(known, ", ") + ")"
	}
	l.errorf(p.k, step, "%sunknown key %q%s", prefix(path), p.key, hint)
}

// join builds a dotted field path.
func join(path, key string) string {
	if path == "" || key == "" {
		return path + key
	}
	return path + "." + key
}
