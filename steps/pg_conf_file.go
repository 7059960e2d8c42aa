package steps

import (
	"regexp"
	"strings"

	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
	"github.com/migrun/migrun/steps/internal/textedit"
)

// pg_conf's file: postgresql.conf's lines read and rewritten in place,
// each setting on its own line where the file has it (a commented
// default's line when it has only that), comments and indentation kept.

// confLineRE matches a parameter line of postgresql.conf: indentation, an
// optional comment mark (a commented-out default), the name, = or blanks,
// the value (quoted, with ” or \' inside, or a bare word) and the rest (a
// trailing comment). A commented line counts only in the `name = value`
// form, so prose in comments is not taken for a parameter.
var confLineRE = regexp.MustCompile(`^(\s*)(#\s*)?([A-Za-z_][A-Za-z0-9_.]*)(\s*=\s*|\s+)('(?:[^'\\]|''|\\.)*'|[^\s#']*)(.*)$`)

// confLine is one parsed line.
type confLine struct {
	indent, name, value, rest string
	commented                 bool
}

func parseConfLine(body string) (confLine, bool) {
	m := confLineRE.FindStringSubmatch(body)
	if m == nil {
		return confLine{}, false
	}
	l := confLine{indent: m[1], commented: m[2] != "", name: m[3], value: m[5], rest: m[6]}
	if l.commented && !strings.Contains(m[4], "=") {
		return confLine{}, false
	}
	// What follows the value must be blank or a comment, or this is not a
	// line PostgreSQL would read as name = value.
	if r := strings.TrimSpace(l.rest); r != "" && !strings.HasPrefix(r, "#") {
		return confLine{}, false
	}
	return l, true
}

// confValues returns the value in force for each parameter the text sets
// (the last uncommented line wins, as in PostgreSQL), keyed by lower-case
// name, unquoted.
func confValues(text string) map[string]string {
	out := map[string]string{}
	for _, raw := range textedit.RawLines(text) {
		body, _ := textedit.LineBody(raw)
		if l, ok := parseConfLine(body); ok && !l.commented {
			out[strings.ToLower(l.name)] = pg.Unquote(l.value)
		}
	}
	return out
}

// setConfParams sets each parameter in text: on its last uncommented line,
// else on its first commented `#name = ...` line, else on a new line at
// the end. Trailing comments and indentation stay. what names the
// parameters changed, notes what the user should know.
func setConfParams(text string, settings map[string]string) (out string, what, notes []string) {
	lines := textedit.RawLines(text)
	eol := textedit.FileEOL(lines)
	var appended []string
	for _, name := range hostcmd.SortedKeys(settings) {
		want := settings[name]
		active, commented := -1, -1
		for i, raw := range lines {
			body, _ := textedit.LineBody(raw)
			l, ok := parseConfLine(body)
			if !ok || !strings.EqualFold(l.name, name) {
				continue
			}
			if !l.commented {
				active = i
			} else if commented < 0 {
				commented = i
			}
		}
		at := active
		if at < 0 {
			at = commented
		}
		if at < 0 {
			appended = append(appended, name+" = "+pgConfValue(want)+eol)
			what = append(what, "set "+name)
			notes = append(notes, "no line for "+name+": appending it at the end")
			continue
		}
		body, lineEOL := textedit.LineBody(lines[at])
		l, _ := parseConfLine(body)
		if !l.commented && pg.Unquote(l.value) == pg.Unquote(want) {
			continue
		}
		rest := l.rest
		if rest != "" && !strings.HasPrefix(rest, " ") && !strings.HasPrefix(rest, "\t") {
			rest = " " + rest
		}
		lines[at] = l.indent + name + " = " + pgConfValue(want) + rest + lineEOL
		if lineEOL == "" {
			// The edited line was the last one, without a newline; a line
			// appended below must not run into it.
			lines[at] += eol
		}
		what = append(what, "set "+name)
	}
	if len(appended) > 0 && len(lines) > 0 {
		if _, e := textedit.LineBody(lines[len(lines)-1]); e == "" {
			lines[len(lines)-1] += eol
		}
	}
	return strings.Join(append(lines, appended...), ""), what, notes
}

// pgConfBareRE is a value postgresql.conf reads the same without quotes:
// a number with an optional unit, or a plain word.
var pgConfBareRE = regexp.MustCompile(`^(-?[0-9]+(\.[0-9]+)?[A-Za-z]*|[A-Za-z_][A-Za-z0-9_]*)$`)

// pgConfValue renders v for postgresql.conf: as is when it is already
// single-quoted or needs no quotes, else quoted with ' doubled.
func pgConfValue(v string) string {
	if len(v) >= 2 && strings.HasPrefix(v, "'") && strings.HasSuffix(v, "'") {
		return v
	}
	if pgConfBareRE.MatchString(v) {
		return v
	}
	return "'" + strings.ReplaceAll(v, "'", "''") + "'"
}
