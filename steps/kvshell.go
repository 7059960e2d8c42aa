package steps

import (
	"fmt"

	"github.com/migrun/migrun/internal/ovirtconf"
)

// The shell-like format of the oVirt engine's conf.d files (KEY="value"),
// read as the engine reads it: ovirt_db_conf edits it, config_set with
// format: shell.

// shellKeyRE matches the keys a shell-like file can hold.
var shellKeyRE = ovirtconf.KeyRE

// shellConf is a shell-like file parsed as the engine reads it
// (ovirtconf.Parse), with its lines kept for editing.
type shellConf struct {
	doc    kvDoc
	values map[string]string
	// unresolved lists, for each key whose final value used ${NAME} of a
	// key the file does not set before it, those names.
	unresolved map[string][]string
}

// parseShellConf parses s as the engine would. Errors name the line.
func parseShellConf(s string) (*shellConf, error) {
	f, err := ovirtconf.Parse(s)
	if err != nil {
		return nil, err
	}
	conf := &shellConf{doc: kvDoc{lines: rawLines(s)}, values: f.Values, unresolved: f.Unresolved}
	for _, a := range f.Assignments {
		conf.doc.entries = append(conf.doc.entries, kvEntry{
			key: a.Key, value: a.Value, first: a.Line, end: a.Line + 1,
			head: a.Indent + a.Key + "=", tail: a.Raw[a.End:],
		})
	}
	return conf, nil
}

// effective is the values an edit compares against: a value that used an
// unknown ${NAME} is taken as not known, so it is rewritten.
func (c *shellConf) effective() map[string]string {
	cur := make(map[string]string, len(c.values))
	for k, v := range c.values {
		if len(c.unresolved[k]) == 0 {
			cur[k] = v
		}
	}
	return cur
}

// resolved fails when a wanted key's value used an unknown ${NAME}.
func (c *shellConf) resolved(want []wantedKey) error {
	for _, w := range want {
		if names := c.unresolved[w.key]; len(names) > 0 {
			return fmt.Errorf("%s refers to ${%s}, not set earlier in the file", w.key, names[0])
		}
	}
	return nil
}

// quoteShellValue renders v as engine-setup writes values (ovirtconf.Quote).
func quoteShellValue(key, v string) (string, error) { return ovirtconf.Quote(key, v) }

// shellCodec writes KEY="value".
var shellCodec = kvCodec{
	encode: func(key, v string) (string, error) {
		if !shellKeyRE.MatchString(key) {
			return "", fmt.Errorf("%q is not a shell-style key ([A-Za-z0-9_]+)", key)
		}
		return quoteShellValue(key, v)
	},
	newLine: func(key, enc string) string { return key + "=" + enc },
}
