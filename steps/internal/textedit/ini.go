package textedit

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The INI format (sections of key = value): config_set with format: ini.

// ParseINI parses s; section headers go into entries with an empty key
// and first = the header's line, so InsertINI can find them.
func ParseINI(s string) (Doc, error) {
	doc := Doc{Lines: RawLines(s)}
	section := ""
	var last *Entry // the entry an indented line would continue
	for i, l := range doc.Lines {
		body, _ := LineBody(l)
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
				return Doc{}, fmt.Errorf("line %d: a section header must end in ]", i+1)
			}
			section = strings.TrimSpace(trimmed[1 : len(trimmed)-1])
			doc.entries = append(doc.entries, Entry{section: section, first: i, end: i + 1})
			last = nil
			continue
		}
		e := Entry{section: section, first: i, end: i + 1}
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
			return Doc{}, fmt.Errorf("line %d: an entry without a key", i+1)
		}
		doc.entries = append(doc.entries, e)
		last = &doc.entries[len(doc.entries)-1]
	}
	return doc, nil
}

// INIValues maps the keys of section to their final values.
func INIValues(doc Doc, section string) map[string]string {
	m := map[string]string{}
	for _, e := range doc.entries {
		if e.key != "" && e.section == section {
			m[e.key] = e.value
		}
	}
	return m
}

// InsertINI puts new lines (add) into section and drops the lines SetKeys
// emptied. They go after the section's last entry (in the last header of
// that name), right after its header when it has none, or into a new
// [section] at the end of the file. Keys of no section go after the last
// such key, or before the first header. aligned are the file's lines after
// SetKeys, one for one with doc.lines.
func InsertINI(doc Doc, aligned []Line, section string, add []Line, eol string) []Line {
	if len(add) == 0 {
		return Compact(aligned)
	}
	at := -1
	for _, e := range doc.entries {
		if e.section == section {
			at = e.end // a header or an entry: new keys go after the last one
		}
	}
	if section == "" && at < 0 {
		at = len(doc.Lines)
		for _, e := range doc.entries {
			if e.key == "" {
				at = e.first
				break
			}
		}
	}
	if at < 0 {
		// A new section at the end, set apart by a blank line.
		out := Compact(aligned)
		if n := len(out); n > 0 {
			if last, _ := LineBody(out[n-1].Text); strings.TrimSpace(last) != "" {
				out = AppendLines(out, eol, Line{eol, eol})
			}
		}
		h := "[" + section + "]" + eol
		return AppendLines(out, eol, append([]Line{{h, h}}, add...)...)
	}
	if at == len(doc.Lines) {
		return AppendLines(Compact(aligned), eol, add...)
	}
	// Every line before at has a terminator: only the last line may lack one.
	out := make([]Line, 0, len(aligned)+len(add))
	out = append(out, aligned[:at]...)
	out = append(out, add...)
	return Compact(append(out, aligned[at:]...))
}

var INICodec = Codec{
	Encode: func(key, v string) (string, error) {
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
