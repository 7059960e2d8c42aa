package textedit

import (
	"fmt"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// The shell-like format of the oVirt engine's conf.d files (KEY="value"),
// read as the engine reads it: ovirt_db_conf edits it, config_set with
// format: shell.

// ShellKeyRE matches the keys a shell-like file can hold.
var ShellKeyRE = ovirtconf.KeyRE

// ShellConf is a shell-like file parsed as the engine reads it
// (ovirtconf.Parse), with its lines kept for editing.
type ShellConf struct {
	Doc    Doc
	Values map[string]string
	// Unresolved lists, for each key whose final value used ${NAME} of a
	// key the file does not set before it, those names.
	Unresolved map[string][]string
}

// ParseShellConf parses s as the engine would. Errors name the line.
func ParseShellConf(s string) (*ShellConf, error) {
	f, err := ovirtconf.Parse(s)
	if err != nil {
		return nil, err
	}
	conf := &ShellConf{Doc: Doc{Lines: RawLines(s)}, Values: f.Values, Unresolved: f.Unresolved}
	for _, a := range f.Assignments {
		conf.Doc.entries = append(conf.Doc.entries, Entry{
			key: a.Key, value: a.Value, first: a.Line, end: a.Line + 1,
			head: a.Indent + a.Key + "=", tail: a.Raw[a.End:],
		})
	}
	return conf, nil
}

// Effective is the values an edit compares against: a value that used an
// unknown ${NAME} is taken as not known, so it is rewritten.
func (c *ShellConf) Effective() map[string]string {
	cur := make(map[string]string, len(c.Values))
	for k, v := range c.Values {
		if len(c.Unresolved[k]) == 0 {
			cur[k] = v
		}
	}
	return cur
}

// Resolved fails when a wanted key's value used an unknown ${NAME}.
func (c *ShellConf) Resolved(want []WantedKey) error {
	for _, w := range want {
		if names := c.Unresolved[w.Key]; len(names) > 0 {
			return fmt.Errorf("%s refers to ${%s}, not set earlier in the file", w.Key, names[0])
		}
	}
	return nil
}

// QuoteShellValue renders v as engine-setup writes values (ovirtconf.Quote).
func QuoteShellValue(key, v string) (string, error) { return ovirtconf.Quote(key, v) }

// ShellCodec writes KEY="value".
var ShellCodec = Codec{
	Encode: func(key, v string) (string, error) {
		if !ShellKeyRE.MatchString(key) {
			return "", fmt.Errorf("%q is not a shell-style key ([A-Za-z0-9_]+)", key)
		}
		return QuoteShellValue(key, v)
	},
	newLine: func(key, enc string) string { return key + "=" + enc },
}
