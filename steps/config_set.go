package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var configSetKind = Kind{
	Name:      "config_set",
	Summary:   "set keys in a shell-style, ini or Java properties config file, keeping the rest of it",
	NeedsHost: true,
	New:       func() Spec { return new(ConfigSet) },
}

var _ Spec = (*ConfigSet)(nil)

// ConfigSet sets keys in a configuration file on the step's host. A key
// already set is rewritten where it stands (every assignment of it, so no
// stale duplicate survives); a missing key is added, at the end of the
// file or of its ini section. Comments, order and every other line are
// kept byte for byte.
type ConfigSet struct {
	File    string            `yaml:"file" required:"true" doc:"absolute path of the file to edit"`
	Format  string            `yaml:"format" required:"true" enum:"shell|ini|properties" doc:"shell: KEY=\"value\" as oVirt and /etc/sysconfig read it; ini: key = value in [section]s; properties: Java key=value"`
	Section string            `yaml:"section" doc:"ini only: the [section] the keys belong to (added if absent; default: before the first section)"`
	Values  map[string]string `yaml:"values" required:"true" secret:"allowed" doc:"key -> value to set; values may be ${secret}s, shown masked"`
	Create  bool              `yaml:"create" doc:"create the file (mode 0644, 0600 if a value is a secret) if it does not exist; default: a missing file is an error"`
}

// Validate checks the keys against the format, and the section.
func (c *ConfigSet) Validate() []Problem {
	ps := validateFile("file", c.File)
	if len(c.Values) == 0 {
		ps = append(ps, Problem{"values", "give at least one key to set"})
	}
	if c.Section != "" && c.Format != "ini" {
		ps = append(ps, Problem{"section", "only ini files have sections"})
	}
	if c.Format == "ini" && (strings.ContainsAny(c.Section, "[]\r\n") || c.Section != strings.TrimSpace(c.Section)) {
		ps = append(ps, Problem{"section", fmt.Sprintf("%q cannot be written as an ini [section] header", c.Section)})
	}
	for _, k := range hostcmd.SortedKeys(c.Values) {
		if err := c.checkKey(k); err != nil {
			ps = append(ps, Problem{"values", err.Error()})
			continue
		}
		// A secret's value is checked when it is revealed, before writing.
		if v := c.Values[k]; !secret.Contains(v) {
			if _, err := c.codec().encode(k, v); err != nil {
				ps = append(ps, Problem{"values", err.Error()})
			}
		}
	}
	return ps
}

// checkKey says whether the format can hold key as a key.
func (c *ConfigSet) checkKey(k string) error {
	switch c.Format {
	case "shell":
		if !shellKeyRE.MatchString(k) {
			return fmt.Errorf("%q is not a shell-style key (letters, digits and _)", k)
		}
	case "ini":
		if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k, "=:\r\n") || strings.HasPrefix(k, "[") ||
			strings.HasPrefix(k, "#") || strings.HasPrefix(k, ";") {
			return fmt.Errorf("%q cannot be an ini key (no = or :, no surrounding blanks, not starting with [, # or ;)", k)
		}
	case "properties":
		if k == "" {
			return errors.New("a properties key cannot be empty")
		}
	}
	return nil
}

func (c *ConfigSet) codec() kvCodec {
	switch c.Format {
	case "ini":
		return iniCodec
	case "properties":
		return propertiesCodec
	}
	return shellCodec
}

// Hosts is the step's host.
func (c *ConfigSet) Hosts(stepHost string) []string { return []string{stepHost} }

// Check reports done when the file already parses to the wanted values.
func (c *ConfigSet) Check(ctx context.Context, rt *Runtime) (Check, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return Check{}, err
	}
	return e.check(ctx, rt)
}

// Describe shows the edit as a diff, secret values masked on both sides.
func (c *ConfigSet) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: "edit " + location{rt.Host, c.File}.String()}}, err
	}
	return e.describe(ctx, rt)
}

// Apply edits the file (after a backup) and re-reads it to verify.
func (c *ConfigSet) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return Outcome{}, err
	}
	return e.apply(ctx, rt)
}

// textEdit builds the edit, secrets revealed. Keys are set in sorted
// order (the plan's map has none), which is also the order missing keys
// are added in.
func (c *ConfigSet) textEdit(rt *Runtime) (*textEdit, error) {
	loc := location{rt.Host, c.File}
	var want []wantedKey
	secretKeys := map[string]bool{}
	hasSecret := false
	for _, k := range hostcmd.SortedKeys(c.Values) {
		isSecret := secret.Contains(c.Values[k]) || looksSecret(k)
		hasSecret = hasSecret || secret.Contains(c.Values[k])
		v, err := reveal(rt, c.Values[k], isSecret)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", loc, k, err)
		}
		secretKeys[k] = isSecret
		want = append(want, wantedKey{key: k, value: v.value, show: v.show, secret: isSecret})
	}
	isSecret := func(k string) bool { return secretKeys[k] || looksSecret(k) }
	e := &textEdit{path: c.File, create: c.Create, newMode: 0o644}
	if hasSecret {
		e.newMode = 0o600
	}
	codec := c.codec()
	e.edit = func(old string) (editResult, error) {
		doc, cur, err := c.parse(old)
		if err != nil {
			return editResult{}, err
		}
		ed, err := setKeys(doc, c.Section, want, cur, codec, isSecret)
		if err != nil {
			return editResult{}, err
		}
		eol := fileEOL(doc.lines)
		add, err := newKeyLines(ed.missing, codec, eol)
		if err != nil {
			return editResult{}, err
		}
		var lines []textLine
		if c.Format == "ini" {
			lines = insertINI(doc, ed.lines, c.Section, add, eol)
		} else {
			lines = appendLines(compact(ed.lines), eol, add...)
		}
		return editResult{
			text:    joinText(lines),
			oldShow: ed.oldShow,
			newShow: joinShow(lines),
			what:    ed.what,
		}, nil
	}
	e.verify = func(written string) error {
		_, cur, err := c.parse(written)
		if err != nil {
			return err
		}
		return checkKeys(cur, want)
	}
	return e, nil
}

// parse reads s in the step's format and returns the values of the keys
// that count: the section's, for ini.
func (c *ConfigSet) parse(s string) (kvDoc, map[string]string, error) {
	switch c.Format {
	case "ini":
		doc, err := parseINI(s)
		if err != nil {
			return kvDoc{}, nil, err
		}
		return doc, iniValues(doc, c.Section), nil
	case "properties":
		doc, err := parseProperties(s)
		if err != nil {
			return kvDoc{}, nil, err
		}
		return doc, propertyValues(doc), nil
	}
	conf, err := parseShellConf(s)
	if err != nil {
		return kvDoc{}, nil, err
	}
	return conf.doc, conf.effective(), nil
}

// Java properties files, read as java.util.Properties.load reads them:
//
//   - lines end in \n, \r\n (or \r, which this reader does not split on);
//   - a line whose first non-blank character is # or ! is a comment;
//     blank means space, tab and form feed;
//   - a line ending in an odd number of backslashes continues on the next
//     one, whose leading blanks are dropped;
//   - the key runs to the first unescaped =, : or blank; blanks, then one
//     = or :, then blanks separate it from the value;
//   - \t \n \r \f and \uXXXX are escapes, and \ before any other character
//     stands for that character;
//   - a later assignment of a key replaces an earlier one.

// parseProperties parses s. An entry's head is its first line up to the
// value, so a rewrite keeps the key's spelling and separator style.
func parseProperties(s string) (kvDoc, error) {
	doc := kvDoc{lines: rawLines(s)}
	for i := 0; i < len(doc.lines); i++ {
		body, _ := lineBody(doc.lines[i])
		indent := len(body) - len(strings.TrimLeft(body, " \t\f"))
		first := body[indent:]
		if first == "" || first[0] == '#' || first[0] == '!' {
			continue
		}
		start := i
		logical := first
		firstLen := len(first) // where the first physical line ends in logical
		for oddBackslashes(logical) {
			logical = logical[:len(logical)-1]
			if start == i {
				firstLen--
			}
			if i+1 >= len(doc.lines) {
				break
			}
			i++
			next, _ := lineBody(doc.lines[i])
			logical += strings.TrimLeft(next, " \t\f")
		}
		rawKey, valueAt := splitProperty(logical)
		key, err := unescapeProperty(rawKey)
		if err != nil {
			return kvDoc{}, fmt.Errorf("line %d: key: %w", start+1, err)
		}
		value, err := unescapeProperty(logical[valueAt:])
		if err != nil {
			return kvDoc{}, fmt.Errorf("line %d: %s: %w", start+1, key, err)
		}
		e := kvEntry{key: key, value: value, first: start, end: i + 1}
		if valueAt <= firstLen {
			e.head = body[:indent] + logical[:valueAt]
		}
		doc.entries = append(doc.entries, e)
	}
	return doc, nil
}

// oddBackslashes reports whether s ends in an odd number of backslashes,
// which makes the line go on.
func oddBackslashes(s string) bool {
	n := 0
	for i := len(s) - 1; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 1
}

// splitProperty finds the end of the (raw) key in a logical line and where
// the (raw) value starts.
func splitProperty(l string) (rawKey string, valueAt int) {
	keyEnd := len(l)
	sepIsEqual := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		if c == '\\' {
			i++
			continue
		}
		if c == '=' || c == ':' {
			keyEnd, sepIsEqual = i, true
			break
		}
		if c == ' ' || c == '\t' || c == '\f' {
			keyEnd = i
			break
		}
	}
	i := keyEnd
	if sepIsEqual {
		i++
	}
	for i < len(l) && (l[i] == ' ' || l[i] == '\t' || l[i] == '\f') {
		i++
	}
	if !sepIsEqual && i < len(l) && (l[i] == '=' || l[i] == ':') {
		i++
		for i < len(l) && (l[i] == ' ' || l[i] == '\t' || l[i] == '\f') {
			i++
		}
	}
	return l[:keyEnd], i
}

// unescapeProperty undoes properties escapes.
func unescapeProperty(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b.WriteByte(c)
			continue
		}
		i++
		switch c = s[i]; c {
		case 't':
			b.WriteByte('\t')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 'f':
			b.WriteByte('\f')
		case 'u':
			// UTF-16 units; a surrogate pair is two escapes in a row.
			var units []uint16
			for {
				if i+4 >= len(s) {
					return "", errors.New(`malformed \uXXXX escape`)
				}
				n, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
				if err != nil {
					return "", errors.New(`malformed \uXXXX escape`)
				}
				units = append(units, uint16(n))
				i += 4
				if !utf16.IsSurrogate(rune(n)) || i+2 >= len(s) || s[i+1] != '\\' || s[i+2] != 'u' {
					break
				}
				i += 2
			}
			b.WriteString(string(utf16.Decode(units)))
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// escapeProperty writes s for a properties file. Everything can be
// written: line breaks and other controls as escapes, and anything beyond
// ASCII as \uXXXX, which reads the same whether the reader takes the file
// as ISO-8859-1 (Properties.load(InputStream)) or as UTF-8. In a key, the
// separators (=, :, blanks) and comment starters are escaped too; in a
// value only a leading blank is, since only the first separator counts and
// engine-setup writes URLs with bare : and = (config.datasource.jdbcurl).
func escapeProperty(s string, isKey bool) (string, error) {
	if !utf8.ValidString(s) {
		return "", errors.New("not valid UTF-8")
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\f':
			b.WriteString(`\f`)
		case r == ' ' && (isKey || i == 0):
			b.WriteString(`\ `)
		case isKey && strings.ContainsRune("=:#!", r):
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r > 0x7e:
			for _, u := range utf16.Encode([]rune{r}) {
				fmt.Fprintf(&b, `\u%04X`, u)
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String(), nil
}

// propertyValues maps keys to their final values.
func propertyValues(doc kvDoc) map[string]string {
	m := make(map[string]string, len(doc.entries))
	for _, e := range doc.entries {
		m[e.key] = e.value
	}
	return m
}

var propertiesCodec = kvCodec{
	encode: func(key, v string) (string, error) {
		enc, err := escapeProperty(v, false)
		if err != nil {
			return "", fmt.Errorf("the value of %s is %w", key, err)
		}
		return enc, nil
	},
	newLine: func(key, enc string) string {
		k, err := escapeProperty(key, true)
		if err != nil { // Validate refuses such keys; keep them readable anyway
			k = strconv.Quote(key)
		}
		return k + "=" + enc
	},
}

// ini files, read the way Python's configparser and most others do:
//
//   - [name] starts a section; lines before the first belong to none;
//   - a line whose first non-blank character is # or ; is a comment;
//   - key = value or key: value, both sides trimmed; a line with neither
//     is a bare key (as my.cnf allows), with an empty value;
//   - an indented line right after an entry continues its value;
//   - a later assignment of a key in the same section replaces an earlier
//     one; keys and section names are compared exactly.

// parseINI parses s; section headers go into entries with an empty key
// and first = the header's line, so insertINI can find them.
func parseINI(s string) (kvDoc, error) {
	doc := kvDoc{lines: rawLines(s)}
	section := ""
	var last *kvEntry // the entry an indented line would continue
	for i, l := range doc.lines {
		body, _ := lineBody(l)
		trimmed := strings.TrimSpace(body)
		switch {
		case trimmed == "":
			last = nil
			continue
		case trimmed[0] == '#' || trimmed[0] == ';':
			continue
		case last != nil && body != strings.TrimLeft(body, " \t"):
			last.value += "\n" + trimmed
			last.end = i + 1
			continue
		case trimmed[0] == '[':
			if !strings.HasSuffix(trimmed, "]") {
				return kvDoc{}, fmt.Errorf("line %d: a section header must end in ]", i+1)
			}
			section = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
			doc.entries = append(doc.entries, kvEntry{section: section, first: i, end: i + 1})
			last = nil
			continue
		}
		e := kvEntry{section: section, first: i, end: i + 1}
		if at := strings.IndexAny(body, "=:"); at >= 0 {
			e.key = strings.TrimSpace(body[:at])
			rest := body[at+1:]
			valueAt := at + 1 + len(rest) - len(strings.TrimLeft(rest, " \t"))
			e.value = strings.TrimSpace(body[valueAt:])
			e.head = body[:valueAt] // "key = ", "key=", "key: ": kept as written
			// Trailing blanks after the value are kept as they were.
			e.tail = body[valueAt+len(strings.TrimRight(body[valueAt:], " \t")):]
		} else {
			e.key = trimmed // bare key: rewritten whole as key = value
		}
		if e.key == "" {
			return kvDoc{}, fmt.Errorf("line %d: an entry without a key", i+1)
		}
		doc.entries = append(doc.entries, e)
		last = &doc.entries[len(doc.entries)-1]
	}
	return doc, nil
}

// iniValues maps the keys of section to their final values.
func iniValues(doc kvDoc, section string) map[string]string {
	m := map[string]string{}
	for _, e := range doc.entries {
		if e.key != "" && e.section == section {
			m[e.key] = e.value
		}
	}
	return m
}

// insertINI puts new lines (add) into section and drops the lines setKeys
// emptied. They go after the section's last entry (in the last header of
// that name), right after its header when it has none, or into a new
// [section] at the end of the file. Keys of no section go after the last
// such key, or before the first header. aligned are the file's lines after
// setKeys, one for one with doc.lines.
func insertINI(doc kvDoc, aligned []textLine, section string, add []textLine, eol string) []textLine {
	if len(add) == 0 {
		return compact(aligned)
	}
	at := -1
	for _, e := range doc.entries {
		if e.section == section {
			at = e.end // a header or an entry: new keys go after the last one
		}
	}
	if section == "" && at < 0 {
		at = len(doc.lines)
		for _, e := range doc.entries {
			if e.key == "" {
				at = e.first
				break
			}
		}
	}
	if at < 0 {
		// A new section at the end, set apart by a blank line.
		out := compact(aligned)
		if n := len(out); n > 0 {
			if last, _ := lineBody(out[n-1].text); strings.TrimSpace(last) != "" {
				out = appendLines(out, eol, textLine{eol, eol})
			}
		}
		h := "[" + section + "]" + eol
		return appendLines(out, eol, append([]textLine{{h, h}}, add...)...)
	}
	if at == len(doc.lines) {
		return appendLines(compact(aligned), eol, add...)
	}
	// Every line before at has a terminator: only the last line may lack one.
	out := make([]textLine, 0, len(aligned)+len(add))
	out = append(out, aligned[:at]...)
	out = append(out, add...)
	return compact(append(out, aligned[at:]...))
}

var iniCodec = kvCodec{
	encode: func(key, v string) (string, error) {
		switch {
		case strings.ContainsAny(v, "\r\n"):
			return "", fmt.Errorf("the value of %s holds a line break, which this ini writer does not fold into continuation lines", key)
		case v != strings.TrimSpace(v):
			return "", fmt.Errorf("the value of %s starts or ends with blanks, which ini readers strip", key)
		case !utf8.ValidString(v):
			return "", fmt.Errorf("the value of %s is not valid UTF-8", key)
		}
		return v, nil
	},
	newLine: func(key, enc string) string {
		if enc == "" {
			return key + " ="
		}
		return key + " = " + enc
	},
}
