package plan

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Error is one problem in a plan, with where it is.
type Error struct {
	File         string
	Line, Column int    // 1-based; 0 when the problem is not at one place (an unknown --var)
	Step         string // id of the step it is in, if any
	// Field is the dotted path of the field the problem is about
	// ("copy.to", "hosts.db.port", "command.argv[2]"); "" when it is
	// about a step or the plan as a whole. Msg starts with it.
	Field string
	Msg   string
}

// fieldPrefixRE matches the dotted path a message about one field starts
// with: "copy.to: ", "hosts.db.port: ", "command.argv[2]: ". The first
// part is a lowercase key, which keeps out "YAML: ..." and the messages
// about a step or the plan as a whole ("no step kind; ...").
var fieldPrefixRE = regexp.MustCompile(`^([a-z_][a-z0-9_]*(?:\[[0-9]+\])?(?:\.[^\s:]+)*): `)

// withField fills e.Field from the start of its message, where every
// message about one field names it.
func (e *Error) withField() *Error {
	if m := fieldPrefixRE.FindStringSubmatch(e.Msg); m != nil {
		e.Field = m[1]
	}
	return e
}

// Error renders the problem as
//
//	plan.yaml:12:5: step "copy-dump": copy.to: unknown host "dbb"
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	b.WriteString(": ")
	if e.Step != "" {
		fmt.Fprintf(&b, "step %q: ", e.Step)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a plan, in file order. Load returns it
// so a user fixes all of them in one go.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find an individual *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns es in file order (problems without a position first),
// without exact repeats: a YAML alias used twice reports its problems once.
func (es Errors) sorted() Errors {
	seen := make(map[Error]bool, len(es))
	out := make(Errors, 0, len(es))
	for _, e := range es {
		if !seen[*e] {
			seen[*e] = true
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column))
	})
	return out
}
