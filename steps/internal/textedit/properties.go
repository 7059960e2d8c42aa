package textedit

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The Java properties format (the engine's aaa/*.properties):
// ovirt_db_conf edits it, config_set with format: properties.

// ParseProperties parses s. An entry's head is its first line up to the
// value, so a rewrite keeps the key's spelling and separator style.
func ParseProperties(s string) (Doc, error) {
	doc := Doc{Lines: RawLines(s)}
	for i := 0; i < len(doc.Lines); i++ {
		body, _ := LineBody(doc.Lines[i])
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
			if i+1 >= len(doc.Lines) {
				break
			}
			i++
			next, _ := LineBody(doc.Lines[i])
			logical += strings.TrimLeft(next, " \t\f")
		}
		rawKey, valueAt := splitProperty(logical)
		key, err := unescapeProperty(rawKey)
		if err != nil {
			return Doc{}, fmt.Errorf("line %d: key: %w", start+1, err)
		}
		value, err := unescapeProperty(logical[valueAt:])
		if err != nil {
			return Doc{}, fmt.Errorf("line %d: %s: %w", start+1, key, err)
		}
		e := Entry{key: key, value: value, first: start, end: i + 1}
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

// EscapeProperty writes s for a properties file. Everything can be
// written: line breaks and other controls as escapes, and anything beyond
// ASCII as \uXXXX, which reads the same whether the reader takes the file
// as ISO-8859-1 (Properties.load(InputStream)) or as UTF-8. In a key, the
// separators (=, :, blanks) and comment starters are escaped too; in a
// value only a leading blank is, since only the first separator counts and
// engine-setup writes URLs with bare : and = (config.datasource.jdbcurl).
func EscapeProperty(s string, isKey bool) (string, error) {
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

// PropertyValues maps keys to their final values.
func PropertyValues(doc Doc) map[string]string {
	m := make(map[string]string, len(doc.entries))
	for _, e := range doc.entries {
		m[e.key] = e.value
	}
	return m
}

var PropertiesCodec = Codec{
	Encode: func(key, v string) (string, error) {
		enc, err := EscapeProperty(v, false)
		if err != nil {
			return "", fmt.Errorf("the value of %s is %w", key, err)
		}
		return enc, nil
	},
	newLine: func(key, enc string) string {
		k, err := EscapeProperty(key, true)
		if err != nil { // Validate refuses such keys; keep them readable anyway
			k = strconv.Quote(key)
		}
		return k + "=" + enc
	},
}
