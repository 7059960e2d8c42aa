package steps

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// The INI format (sections of key = value): config_set with format: ini.

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
