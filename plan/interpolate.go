package plan

import (
	"fmt"
	"strings"

	"github.com/migrun/migrun/internal/secret"
)

// interpolate expands the ${ref} references in s, asking lookup for each
// ref's text. "$$" is a literal "$"; a "$" followed by anything else (a
// shell's $HOME or $1) is kept as is, so shell snippets need no escaping
// unless they use braces.
//
// Every problem is returned, as a message without a position: the caller
// knows which YAML node s came from.
func interpolate(s string, lookup func(ref string) (string, error)) (string, []string) {
	if !strings.Contains(s, "$") {
		return s, nil
	}
	var b strings.Builder
	var problems []string
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 || i == len(s)-1 {
			b.WriteString(s)
			return b.String(), problems
		}
		b.WriteString(s[:i])
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			s = s[i+2:]
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				problems = append(problems, `unterminated "${"; write "$$" for a literal "$"`)
				return b.String(), problems
			}
			ref := s[i+2 : i+2+end]
			val, err := lookup(ref)
			if err != nil {
				problems = append(problems, err.Error())
			}
			b.WriteString(val)
			s = s[i+3+end:]
		default:
			b.WriteByte('$')
			s = s[i+1:]
		}
	}
}

// refs is what ${...} may name in a plan. Which of them a string may use
// depends on where it is, so the loader asks through the lookup methods.
type refs struct {
	vars    map[string]string // resolved values
	tainted map[string]bool   // vars that failed to resolve (already reported)
	secrets map[string]bool
	hosts   map[string]Host // nil until the hosts are loaded
	// detected names the detect: section's entries, which when: takes
	// as vars.
	detected map[string]bool
}

// lookup resolves ref for a step field: a var, a secret (as its token,
// never its value) or ${hosts.NAME.address|user}.
func (r *refs) lookup(ref string) (string, error) {
	if name, ok := strings.CutPrefix(ref, "hosts."); ok {
		return r.host(name)
	}
	if err := checkRefName(ref); err != nil {
		return "", err
	}
	if val, ok := r.vars[ref]; ok {
		// A var that failed is reported where it is defined; its users
		// would only repeat that.
		if r.tainted[ref] {
			return "", nil
		}
		return val, nil
	}
	if r.secrets[ref] {
		return secret.Token(ref), nil
	}
	return "", r.undefined(ref)
}

// lookupVar resolves ref for strings that may use plain vars only: host
// fields and secret sources, which are settled before anything that could
// refer to them, and timeouts.
func (r *refs) lookupVar(ref string) (string, error) {
	if strings.HasPrefix(ref, "hosts.") {
		return "", fmt.Errorf("${%s}: host fields are not available here, only vars", ref)
	}
	if r.secrets[ref] {
		return "", fmt.Errorf("${%s} is a secret; only step fields that take secrets may use one", ref)
	}
	return r.lookup(ref)
}

func (r *refs) undefined(ref string) error {
	known := make([]string, 0, len(r.vars)+len(r.secrets))
	for name := range r.vars {
		known = append(known, name)
	}
	for name := range r.secrets {
		known = append(known, name)
	}
	return fmt.Errorf("undefined variable %q in ${%s}%s", ref, ref, didYouMean(ref, known))
}

// host resolves "NAME.ATTR" of ${hosts.NAME.ATTR}.
func (r *refs) host(ref string) (string, error) {
	name, attr, ok := strings.Cut(ref, ".")
	if !ok || (attr != "address" && attr != "user") {
		return "", fmt.Errorf("${hosts.%s}: want ${hosts.NAME.address} or ${hosts.NAME.user}", ref)
	}
	h, ok := r.hosts[name]
	if !ok {
		names := make([]string, 0, len(r.hosts))
		for n := range r.hosts {
			names = append(names, n)
		}
		return "", fmt.Errorf("${hosts.%s}: no host %q%s", ref, name, didYouMean(name, names))
	}
	switch {
	case attr == "address" && h.Local:
		return "", fmt.Errorf("${hosts.%s}: host %q is local and has no address", ref, name)
	case attr == "address":
		return h.Address, nil
	case h.User == "":
		// ~/.ssh/config may know the user, but the plan text cannot.
		return "", fmt.Errorf("${hosts.%s}: host %q sets no user", ref, name)
	}
	return h.User, nil
}

// checkRefName refuses references that cannot name a var or a secret.
func checkRefName(ref string) error {
	if ref == "" {
		return fmt.Errorf(`empty "${}"; write "$$" for a literal "$"`)
	}
	if !varNameRE.MatchString(ref) {
		return fmt.Errorf("${%s}: not a var or secret name (letters, digits and _, not starting with a digit)", ref)
	}
	return nil
}
