package steps

import (
	"context"
	"fmt"
	"regexp"
	"strings"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/textedit"
)

var lineKind = Kind{
	Name:      "line",
	Summary:   "ensure a line is present in (or absent from) a text file, like Ansible's lineinfile",
	NeedsHost: true,
	New:       func() Spec { return new(Line) },
}

var _ Spec = (*Line)(nil)

// Line ensures one line is present in a text file, or absent from it.
//
// Present: with regexp, the last line matching it is replaced by line;
// otherwise, when no line is exactly line, it is inserted after the last
// line matching after, before the first line matching before, or at the
// end. Absent: every line equal to line (or matching regexp) is removed.
// Regular expressions are Go's (RE2) and match anywhere in a line unless
// anchored with ^ and $.
type Line struct {
	File   string `yaml:"file" required:"true" doc:"absolute path of the file to edit"`
	Line   string `yaml:"line" secret:"allowed" doc:"the exact line, without its line break (required with state present); may hold ${secret}s, shown masked"`
	State  string `yaml:"state" enum:"present|absent" default:"present" doc:"present: make sure the line is there; absent: remove it"`
	Regexp string `yaml:"regexp" doc:"present: the last line matching it is replaced by line (as lineinfile's regexp); absent: every line matching it is removed"`
	After  string `yaml:"after" doc:"insert after the last line matching this regexp; no match: at the end of the file"`
	Before string `yaml:"before" doc:"insert before the first line matching this regexp; no match: at the start of the file"`
	Create bool   `yaml:"create" doc:"create the file (mode 0644, 0600 if line holds a secret) if it does not exist; default: a missing file is an error"`
}

func (l *Line) state() string {
	if l.State == "" {
		return "present"
	}
	return l.State
}

// Validate checks the combination of fields and compiles the regexps.
func (l *Line) Validate() []Problem {
	ps := validateFile("file", l.File)
	present := l.state() == "present"
	switch {
	case present && l.Line == "":
		ps = append(ps, Problem{"line", "give the line to ensure"})
	case !present && l.Line == "" && l.Regexp == "":
		ps = append(ps, Problem{"", "give the line to remove, or a regexp matching the lines to remove"})
	}
	if strings.ContainsAny(l.Line, "\r\n") {
		ps = append(ps, Problem{"line", "a line cannot hold a line break; use one step per line"})
	}
	if l.After != "" && l.Before != "" {
		ps = append(ps, Problem{"before", "give after or before, not both"})
	}
	if !present {
		for _, f := range []struct{ key, val string }{{"after", l.After}, {"before", l.Before}} {
			if f.val != "" {
				ps = append(ps, Problem{f.key, "only places a line that is inserted (state present)"})
			}
		}
		if l.Create {
			ps = append(ps, Problem{"create", "has no use with state absent: a missing file holds no line"})
		}
	}
	for _, f := range []struct{ key, val string }{{"regexp", l.Regexp}, {"after", l.After}, {"before", l.Before}} {
		if f.val == "" {
			continue
		}
		if _, err := regexp.Compile(f.val); err != nil {
			ps = append(ps, Problem{f.key, err.Error()})
		}
	}
	return ps
}

// Hosts is the step's host.
func (l *Line) Hosts(stepHost string) []string { return []string{stepHost} }

// Check reports done when the file already is as wanted.
func (l *Line) Check(ctx context.Context, rt *Runtime) (Check, error) {
	e, err := l.textEdit(rt)
	if err != nil {
		return Check{}, err
	}
	return e.check(ctx, rt)
}

// Describe shows the edit as a diff and says where a line goes when its
// anchor matches nothing.
func (l *Line) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	e, err := l.textEdit(rt)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: "edit " + fileOn(rt.Host, l.File)}}, err
	}
	return e.describe(ctx, rt)
}

// Apply edits the file (after a backup) and re-reads it to verify.
func (l *Line) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	e, err := l.textEdit(rt)
	if err != nil {
		return Outcome{}, err
	}
	return e.apply(ctx, rt)
}

// lineRegexps are the compiled regexps of a Line; nil when not given.
type lineRegexps struct {
	match, after, before *regexp.Regexp
}

func (l *Line) compile() (lineRegexps, error) {
	var res lineRegexps
	for _, f := range []struct {
		key, val string
		dst      **regexp.Regexp
	}{{"regexp", l.Regexp, &res.match}, {"after", l.After, &res.after}, {"before", l.Before, &res.before}} {
		if f.val == "" {
			continue
		}
		re, err := regexp.Compile(f.val)
		if err != nil {
			return res, fmt.Errorf("%s: %w", f.key, err)
		}
		*f.dst = re
	}
	return res, nil
}

func (l *Line) textEdit(rt *Runtime) (*textEdit, error) {
	loc := fileOn(rt.Host, l.File)
	res, err := l.compile()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	want, err := reveal(rt, l.Line, false)
	if err != nil {
		return nil, fmt.Errorf("%s: line: %w", loc, err)
	}
	e := &textEdit{path: l.File, create: l.Create, newMode: 0o644}
	if secret.Contains(l.Line) {
		e.newMode = 0o600
	}
	if l.state() == "absent" {
		e.missingDone = true
		e.edit = func(old string) (editResult, error) { return l.remove(old, want.value, res.match), nil }
		e.verify = func(written string) error {
			for i, raw := range textedit.RawLines(written) {
				if body, _ := textedit.LineBody(raw); l.removes(body, want.value, res.match) {
					return fmt.Errorf("line %d is still there", i+1)
				}
			}
			return nil
		}
		return e, nil
	}
	e.edit = func(old string) (editResult, error) { return l.ensure(old, want, res), nil }
	e.verify = func(written string) error {
		for _, raw := range textedit.RawLines(written) {
			if body, _ := textedit.LineBody(raw); body == want.value {
				return nil
			}
		}
		return fmt.Errorf("the line is not there")
	}
	return e, nil
}

// ensure works out the edit for state present.
func (l *Line) ensure(old string, want revealed, re lineRegexps) editResult {
	raw := textedit.RawLines(old)
	lines := textedit.PlainLines(old)
	res := editResult{text: old, oldShow: old, newShow: old}
	eol := textedit.FileEOL(raw)
	newLine := textedit.Line{Text: want.value + eol, Show: want.show + eol}

	if re.match != nil {
		last := -1
		for i, r := range raw {
			if body, _ := textedit.LineBody(r); re.match.MatchString(body) {
				last = i
			}
		}
		if last >= 0 {
			body, end := textedit.LineBody(raw[last])
			if body == want.value {
				return res
			}
			lines[last] = textedit.Line{Text: want.value + end, Show: want.show + end}
			res.text, res.newShow = textedit.JoinText(lines), textedit.JoinShow(lines)
			res.what = []string{fmt.Sprintf("replace line %d (it matches regexp)", last+1)}
			return res
		}
	}
	for _, r := range raw {
		if body, _ := textedit.LineBody(r); body == want.value {
			return res
		}
	}

	at, where := len(raw), "add the line at the end"
	switch {
	case re.after != nil:
		found := -1
		for i, r := range raw {
			if body, _ := textedit.LineBody(r); re.after.MatchString(body) {
				found = i
			}
		}
		if found >= 0 {
			at, where = found+1, fmt.Sprintf("insert the line after line %d", found+1)
		} else {
			res.notes = append(res.notes, "no line matches after: adding the line at the end")
		}
	case re.before != nil:
		found := -1
		for i, r := range raw {
			if body, _ := textedit.LineBody(r); re.before.MatchString(body) {
				found = i
				break
			}
		}
		if found >= 0 {
			at, where = found, fmt.Sprintf("insert the line before line %d", found+1)
		} else {
			at, where = 0, "add the line at the start"
			res.notes = append(res.notes, "no line matches before: adding the line at the start")
		}
	}
	var out []textedit.Line
	if at == len(raw) {
		out = textedit.AppendLines(lines, eol, newLine)
	} else {
		// Only the last line can lack a terminator, and at is before it.
		out = append(append(append(out, lines[:at]...), newLine), lines[at:]...)
	}
	res.text, res.newShow = textedit.JoinText(out), textedit.JoinShow(out)
	res.what = []string{where}
	return res
}

// removes reports whether state absent removes a line with this body.
func (l *Line) removes(body, want string, match *regexp.Regexp) bool {
	if match != nil {
		return match.MatchString(body)
	}
	return body == want
}

// remove works out the edit for state absent.
func (l *Line) remove(old, want string, match *regexp.Regexp) editResult {
	var out []textedit.Line
	var gone []string
	for i, tl := range textedit.PlainLines(old) {
		if body, _ := textedit.LineBody(tl.Text); l.removes(body, want, match) {
			gone = append(gone, fmt.Sprint(i+1))
			continue
		}
		out = append(out, tl)
	}
	res := editResult{text: textedit.JoinText(out), oldShow: old, newShow: textedit.JoinShow(out)}
	if len(gone) > 0 {
		res.what = []string{"remove " + hostcmd.Plural(len(gone), "line", "lines") + " (" + strings.Join(gone, ", ") + ")"}
	}
	return res
}
