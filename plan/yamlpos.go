package plan

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	goccy "github.com/goccy/go-yaml"
	goccyparser "github.com/goccy/go-yaml/parser"
)

// A YAML syntax error is worth little on the wrong line. yaml.v3 gives
// one line per error, often where the enclosing collection began rather
// than where the text went wrong, and no column. Its message stays; the
// place is refined here, per kind of error, from the text itself and from
// a second parser (goccy/go-yaml) whose positions point at the offending
// token for the errors yaml.v3 places at their context. The positions are
// tested against a reference parser's on a corpus of broken plans
// (testdata/yaml-errors).

// yamlError records a syntax error of data at the best place known.
func (l *loader) yamlError(err error, data []byte) {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		// Errors yaml.v3 gives no line, such as an unknown alias.
		line, col := 0, 0
		if name, ok := strings.CutPrefix(msg, "yaml: unknown anchor '"); ok {
			name, _, _ = strings.Cut(name, "'")
			line, col = findText(data, "*"+name)
		}
		l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Msg: "YAML: " + strings.TrimPrefix(msg, "yaml: ")})
		return
	}
	line, _ := strconv.Atoi(m[1])
	what := m[2]
	if strings.HasPrefix(what, "did not find expected") {
		// yaml.v3 numbers lines from 0 in its parser's errors (and from 1
		// in its scanner's); those all start this way.
		line++
	}
	line, col := refinePosition(data, what, line)
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Column: col, Msg: "YAML: " + what})
}

// refinePosition places an error yaml.v3 reported as what at line.
func refinePosition(data []byte, what string, line int) (int, int) {
	lines := strings.Split(string(data), "\n")
	text := func(n int) string {
		if n < 1 || n > len(lines) {
			return ""
		}
		return strings.TrimSuffix(lines[n-1], "\r")
	}
	switch {
	case strings.Contains(what, "tab character"):
		// Reported where the enclosing key began: the tab is on that line
		// or a later one, at the start of its indent.
		return tabIndent(lines, line)
	case strings.HasPrefix(what, "found character that cannot start any token"):
		return line, firstNonSpace(text(line))
	case strings.HasPrefix(what, "mapping values are not allowed"):
		return line, valueColon(text(line))
	case strings.HasPrefix(what, "did not find expected"), strings.HasPrefix(what, "found unexpected end of stream"):
		// Reported at the collection (or the quote) that was not closed
		// properly: the token that broke it is where the second parser
		// stops.
		gl, gc, ok := goccyPosition(data)
		if !ok {
			return line, 0
		}
		if strings.Contains(what, "',' or") {
			// An unclosed flow collection: the first ':' of the line
			// that took it for a key is what ended it.
			if i := strings.IndexByte(text(gl), ':'); i >= gc-1 {
				return gl, utf8.RuneCountInString(text(gl)[:i]) + 1
			}
		}
		return gl, gc
	}
	return line, 0
}

// goccyPosition is where goccy/go-yaml's parser stops on data.
func goccyPosition(data []byte) (line, col int, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	_, err := goccyparser.ParseBytes(data, 0)
	var se *goccy.SyntaxError
	if !errors.As(err, &se) || se.Token == nil || se.Token.Position == nil {
		return 0, 0, false
	}
	return se.Token.Position.Line, se.Token.Position.Column, true
}

// valueColon is the column of the ':' that makes a mapping value where
// none may start: on a line "key: value: more" the second, else the
// first (a key indented as if it continued the line above).
func valueColon(s string) int {
	var cols []int
	quote := rune(0)
	col := 0
	runes := []rune(s)
scan:
	for i, r := range runes {
		col++
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			quote = r
		case r == '#' && (i == 0 || runes[i-1] == ' '):
			break scan // a comment
		case r == ':' && (i+1 == len(runes) || runes[i+1] == ' '):
			cols = append(cols, col)
		}
	}
	switch {
	case len(cols) >= 2:
		return cols[1]
	case len(cols) == 1:
		return cols[0]
	}
	return 0
}

// firstNonSpace is the column of the first character of s that is not a
// space (a tab counts: it is what cannot start a token).
func firstNonSpace(s string) int {
	for i, r := range []rune(s) {
		if r != ' ' {
			return i + 1
		}
	}
	return 0
}

// tabIndent finds, from line on, the first line whose indentation holds a
// tab: its number and the tab's column. Without one, line as given.
func tabIndent(lines []string, from int) (int, int) {
	for i := max(from-1, 0); i < len(lines); i++ {
		text := lines[i]
		indent := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
		if j := strings.IndexByte(indent, '\t'); j >= 0 {
			return i + 1, j + 1
		}
	}
	return from, 0
}

// findText is the line and column of the first occurrence of s in data.
func findText(data []byte, s string) (int, int) {
	for i, text := range strings.Split(string(data), "\n") {
		if j := strings.Index(text, s); j >= 0 {
			return i + 1, utf8.RuneCountInString(text[:j]) + 1
		}
	}
	return 0, 0
}

// invalidUTF8 finds the first byte of data that is not UTF-8: its line and
// column (counted in characters, 1-based).
func invalidUTF8(data []byte) (line, col int, found bool) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			return line, col, true
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, false
}
