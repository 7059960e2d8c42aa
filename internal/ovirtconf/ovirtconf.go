// Package ovirtconf reads oVirt's shell-like configuration files
// (/etc/ovirt-engine/engine.conf.d/*.conf, the DWH's
// ovirt-engine-dwhd.conf.d/*.conf ...) as the engine does, and builds and
// parses the JDBC URLs engine-setup writes into them.
//
// The engine reads these files with ShellLikeConfd (Java) and engine-setup
// with ovirt_engine.configfile.ConfigFile (Python), which follow the same
// rules; Parse implements them:
//
//   - a line that is blank or whose first non-blank character is # is a
//     comment;
//   - any other line must be KEY=VALUE: optional leading blanks, a key of
//     [A-Za-z0-9_], = with nothing around it; anything else is an error;
//   - in VALUE, " toggles quoting (and is dropped), \ takes the next
//     character literally, ${NAME} expands to NAME's value so far, any
//     other $ is an error, and an unquoted space or # ends the value
//     (what follows is ignored);
//   - a later assignment of a key replaces an earlier one.
//
// ${NAME} of a key set in no earlier line (nor in the values of files read
// before, see ParseWith) expands to nothing; such names are recorded
// instead of guessed.
package ovirtconf

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"
)

var (
	blankRE  = regexp.MustCompile(`^[ \t\n\v\f\r]*(#.*)?$`)
	assignRE = regexp.MustCompile(`^([ \t\n\v\f\r]*)([A-Za-z0-9_]+)=(.*)$`)
	// KeyRE matches the keys the files can hold.
	KeyRE = regexp.MustCompile(`^[A-Za-z0-9_]+$`)
)

// Assignment is one KEY=VALUE line of a file.
type Assignment struct {
	Line   int    // index of the physical line (0-based, as Lines splits)
	Indent string // the blanks before the key
	Key    string
	Value  string // the value as the engine reads it
	Raw    string // the text after KEY=, up to the line terminator
	End    int    // offset in Raw where the value ended (its tail follows)
	// Unresolved are the ${NAME}s the value used whose NAME was not known.
	Unresolved []string
}

// File is a parsed file.
type File struct {
	Assignments []Assignment
	// Values holds each key's final value.
	Values map[string]string
	// Unresolved lists, for each key whose final value used ${NAME} of a
	// key not set before it, those names.
	Unresolved map[string][]string
}

// Get is the value of key and whether the file sets it.
func (f *File) Get(key string) (string, bool) {
	v, ok := f.Values[key]
	return v, ok
}

// Lines splits s into physical lines that keep their terminators; a last
// line without one stays without. "" has no lines. Assignment.Line
// indexes these.
func Lines(s string) []string {
	if s == "" {
		return nil
	}
	lines := strings.SplitAfter(s, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}

// Parse parses s as the engine would. Errors name the line.
func Parse(s string) (*File, error) { return ParseWith(s, nil) }

// ParseWith parses s with before holding the values of the files read
// before it: ${NAME} not set earlier in s takes NAME's value there.
func ParseWith(s string, before map[string]string) (*File, error) {
	f := &File{Values: map[string]string{}, Unresolved: map[string][]string{}}
	lookup := func(name string) (string, bool) {
		if v, ok := f.Values[name]; ok {
			return v, true
		}
		v, ok := before[name]
		return v, ok
	}
	for i, l := range Lines(s) {
		body := strings.TrimSuffix(strings.TrimSuffix(l, "\n"), "\r")
		if !strings.HasSuffix(l, "\n") {
			body = l
		}
		if blankRE.MatchString(body) {
			continue
		}
		m := assignRE.FindStringSubmatch(body)
		if m == nil {
			return nil, fmt.Errorf("line %d: not KEY=VALUE (no blanks around =), a comment or a blank line", i+1)
		}
		key, raw := m[2], m[3]
		value, end, missing, err := Expand(raw, lookup)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s: %w", i+1, key, err)
		}
		f.Values[key] = value
		// A later line may reassign a key: only the final one counts.
		if len(missing) > 0 {
			f.Unresolved[key] = missing
		} else {
			delete(f.Unresolved, key)
		}
		f.Assignments = append(f.Assignments, Assignment{
			Line: i, Indent: m[1], Key: key, Value: value, Raw: raw, End: end, Unresolved: missing,
		})
	}
	return f, nil
}

// ErrDollar is the engine's "Malformed variable assignment".
var ErrDollar = errors.New(`a $ must start ${NAME} (write \$ for a literal $)`)

// Expand expands raw, the text after KEY=, by the rules above. It returns
// the value, the offset in raw where the value ended (the unquoted space or
// # that ended it, or len(raw)), and the ${NAME}s lookup did not know. It
// walks bytes, not runes: every special character is ASCII, and UTF-8
// never uses ASCII bytes inside a multi-byte character.
func Expand(raw string, lookup func(string) (string, bool)) (value string, end int, unresolved []string, err error) {
	var b strings.Builder
	escape, quoted := false, false
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if escape {
			escape = false
			b.WriteByte(c)
			continue
		}
		switch c {
		case '\\':
			escape = true
		case '$':
			if i+1 >= len(raw) || raw[i+1] != '{' {
				return "", 0, nil, ErrDollar
			}
			j := strings.IndexByte(raw[i+2:], '}')
			if j < 0 {
				return "", 0, nil, errors.New("${ without a closing }")
			}
			name := raw[i+2 : i+2+j]
			if v, ok := lookup(name); ok {
				b.WriteString(v)
			} else {
				unresolved = append(unresolved, name)
			}
			i += 2 + j
		case '"':
			quoted = !quoted
		case ' ', '#':
			if !quoted {
				return b.String(), i, unresolved, nil
			}
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	// A trailing lone \ and an unclosed quote are dropped, as the engine
	// does; neither is an error there.
	return b.String(), len(raw), unresolved, nil
}

// Quote renders v so that Expand gives v back: in double quotes, with ",
// \ and $ escaped (as engine-setup writes values). It refuses what a
// line-based, UTF-8 file cannot hold. Errors name key, never the value (a
// password).
func Quote(key, v string) (string, error) {
	if strings.ContainsAny(v, "\r\n") {
		return "", fmt.Errorf("the value of %s holds a line break, which a line-based file cannot hold", key)
	}
	if !utf8.ValidString(v) {
		return "", fmt.Errorf("the value of %s is not valid UTF-8, which the engine reads the file as", key)
	}
	var b strings.Builder
	b.Grow(len(v) + 2)
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '"' || c == '\\' || c == '$' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String(), nil
}

// LoadDir reads dir/*.conf in lexical order, as the engine reads its
// engine.conf.d: a later file's keys override an earlier one's, and
// ${NAME} sees the keys of the files read before. base (may be nil) holds
// values read before the directory (e.g. engine.conf). It returns the
// merged values and the files read.
func LoadDir(dir string, base map[string]string) (map[string]string, []string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.conf"))
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(files)
	return LoadFiles(files, base)
}

// LoadFiles reads files in the order given, as LoadDir does.
func LoadFiles(files []string, base map[string]string) (map[string]string, []string, error) {
	vals := make(map[string]string, len(base))
	for k, v := range base {
		vals[k] = v
	}
	var read []string
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, read, err
		}
		f, err := ParseWith(string(b), vals)
		if err != nil {
			return nil, read, fmt.Errorf("%s: %w", p, err)
		}
		for k, v := range f.Values {
			vals[k] = v
		}
		read = append(read, p)
	}
	return vals, read, nil
}

// Bool reads a boolean as the engine does (ShellLikeConfd.getBoolean):
// trimmed, case-insensitive 1/t/true/y/yes or 0/f/false/n/no.
func Bool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "y", "yes":
		return true, true
	case "0", "f", "false", "n", "no":
		return false, true
	}
	return false, false
}

// Driver is the JDBC driver engine-setup names.
const Driver = "org.postgresql.Driver"

// NonValidatingFactory is the URL option that turns off certificate and
// host name validation.
const NonValidatingFactory = "sslfactory=org.postgresql.ssl.NonValidatingFactory"

// JdbcURL builds the URL the way engine-setup does (ovirt-engine,
// packaging/setup/ovirt_engine_setup/engine_common/database.py,
// OvirtUtils.getJdbcUrl):
//
//	'jdbc:postgresql://{host}:{port}/{database}?{jdbcTlsOptions}'
//
// where the options, joined by '&', are 'ssl=true' when secured and
// 'sslfactory=org.postgresql.ssl.NonValidatingFactory' when the host is
// not validated. engine-setup forces validation off without TLS, so the
// three URLs are ?sslfactory=... (plain), ?ssl=true&sslfactory=...
// (secured, not validated) and ?ssl=true (secured and validated).
//
// One departure: an IPv6 address is bracketed, as the PostgreSQL JDBC
// driver requires; engine-setup would write it bare and break the URL.
func JdbcURL(host, port, db string, secured, validated bool) string {
	if strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
		host = "[" + host + "]"
	}
	var opts []string
	if secured {
		opts = append(opts, "ssl=true")
	}
	if !validated {
		opts = append(opts, NonValidatingFactory)
	}
	return "jdbc:postgresql://" + host + ":" + port + "/" + db + "?" + strings.Join(opts, "&")
}

// ParseJdbcURL takes host, port ("" when the URL names none) and database
// out of a PostgreSQL JDBC URL.
func ParseJdbcURL(u string) (host, port, db string, err error) {
	host, port, db, _, err = ParseJdbcURLOptions(u)
	return host, port, db, err
}

// ParseJdbcURLOptions is ParseJdbcURL that also returns the options after
// ?, as key → value (a key without = maps to "").
func ParseJdbcURLOptions(u string) (host, port, db string, opts map[string]string, err error) {
	rest, ok := strings.CutPrefix(u, "jdbc:postgresql://")
	if !ok {
		return "", "", "", nil, fmt.Errorf("%q is not a jdbc:postgresql:// URL", u)
	}
	rest, query, _ := strings.Cut(rest, "?")
	hostport, db, ok := strings.Cut(rest, "/")
	if !ok || db == "" {
		return "", "", "", nil, fmt.Errorf("%q names no database", u)
	}
	host, port = hostport, ""
	if i := strings.LastIndexByte(hostport, ':'); i >= 0 && !strings.HasSuffix(hostport, "]") {
		host, port = hostport[:i], hostport[i+1:]
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return "", "", "", nil, fmt.Errorf("%q names no host", u)
	}
	opts = map[string]string{}
	for _, kv := range strings.Split(query, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		opts[k] = v
	}
	return host, port, db, opts, nil
}
