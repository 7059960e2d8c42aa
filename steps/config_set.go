package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/textedit"
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
			if _, err := c.codec().Encode(k, v); err != nil {
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
		if !textedit.ShellKeyRE.MatchString(k) {
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

func (c *ConfigSet) codec() textedit.Codec {
	switch c.Format {
	case "ini":
		return textedit.INICodec
	case "properties":
		return textedit.PropertiesCodec
	}
	return textedit.ShellCodec
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
		return []Action{{Host: rt.Host, Summary: "edit " + fileOn(rt.Host, c.File)}}, err
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
	loc := fileOn(rt.Host, c.File)
	var want []textedit.WantedKey
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
		want = append(want, textedit.WantedKey{Key: k, Value: v.value, Show: v.show, Secret: isSecret})
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
		ed, err := textedit.SetKeys(doc, c.Section, want, cur, codec, isSecret)
		if err != nil {
			return editResult{}, err
		}
		eol := textedit.FileEOL(doc.Lines)
		add, err := textedit.NewKeyLines(ed.Missing, codec, eol)
		if err != nil {
			return editResult{}, err
		}
		var lines []textedit.Line
		if c.Format == "ini" {
			lines = textedit.InsertINI(doc, ed.Lines, c.Section, add, eol)
		} else {
			lines = textedit.AppendLines(textedit.Compact(ed.Lines), eol, add...)
		}
		return editResult{
			text:    textedit.JoinText(lines),
			oldShow: ed.OldShow,
			newShow: textedit.JoinShow(lines),
			what:    ed.What,
		}, nil
	}
	e.verify = func(written string) error {
		_, cur, err := c.parse(written)
		if err != nil {
			return err
		}
		return textedit.CheckKeys(cur, want)
	}
	return e, nil
}

// parse reads s in the step's format and returns the values of the keys
// that count: the section's, for ini.
func (c *ConfigSet) parse(s string) (textedit.Doc, map[string]string, error) {
	switch c.Format {
	case "ini":
		doc, err := textedit.ParseINI(s)
		if err != nil {
			return textedit.Doc{}, nil, err
		}
		return doc, textedit.INIValues(doc, c.Section), nil
	case "properties":
		doc, err := textedit.ParseProperties(s)
		if err != nil {
			return textedit.Doc{}, nil, err
		}
		return doc, textedit.PropertyValues(doc), nil
	}
	conf, err := textedit.ParseShellConf(s)
	if err != nil {
		return textedit.Doc{}, nil, err
	}
	return conf.Doc, conf.Effective(), nil
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

// ini files, read the way Python's configparser and most others do:
//
//   - [name] starts a section; lines before the first belong to none;
//   - a line whose first non-blank character is # or ; is a comment;
//   - key = value or key: value, both sides trimmed; a line with neither
//     is a bare key (as my.cnf allows), with an empty value;
//   - an indented line right after an entry continues its value;
//   - a later assignment of a key in the same section replaces an earlier
//     one; keys and section names are compared exactly.
