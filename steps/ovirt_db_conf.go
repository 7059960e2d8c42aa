package steps

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/migrun/migrun/internal/ovirtconf"
	"github.com/migrun/migrun/steps/internal/textedit"
)

var ovirtDbConfKind = Kind{
	Name:      "ovirt_db_conf",
	Summary:   "point an oVirt engine or DWH config file at a database, regenerating its JDBC URL",
	NeedsHost: true,
	New:       func() Spec { return new(OvirtDbConf) },
}

var _ Spec = (*OvirtDbConf)(nil)

// OvirtDbConf points one oVirt configuration file at a PostgreSQL
// database: /etc/ovirt-engine/engine.conf.d/10-setup-database.conf
// (ENGINE_DB_*), the DWH's ovirt-engine-dwhd.conf.d/10-setup-database.conf
// (ENGINE_DB_* and DWH_DB_*), engine.conf.d/10-setup-dwh-database.conf
// (DWH_DB_*), engine.conf.d/12-setup-keycloak.conf (KEYCLOAK_DB_*), or the
// internal login domain's aaa/internal.properties.
//
// Since oVirt 3.6 engine-setup writes nine keys per database, and the
// engine connects with PREFIX_URL alone: changing PREFIX_HOST without the
// URL leaves the engine on the old database. So the URL is always
// regenerated, from the resulting host, port and database (the file's for
// those the step does not give), exactly as engine-setup builds it.
type OvirtDbConf struct {
	File              string `yaml:"file" required:"true" doc:"absolute path of the file to edit, e.g. /etc/ovirt-engine/engine.conf.d/10-setup-database.conf"`
	Format            string `yaml:"format" enum:"shell|properties" doc:"file format: shell (KEY=\"value\", the *.conf files) or properties (aaa/internal.properties); default: properties when file ends in .properties, else shell"`
	Prefix            string `yaml:"prefix" enum:"ENGINE_DB|DWH_DB|KEYCLOAK_DB" default:"ENGINE_DB" doc:"which database's keys to set in a shell file: ENGINE_DB_*, DWH_DB_* or KEYCLOAK_DB_* (engine.conf.d/12-setup-keycloak.conf)"`
	Host              string `yaml:"host" doc:"database host name or address (default: keep the file's)"`
	Port              int    `yaml:"port" default:"5432" doc:"database port"`
	Database          string `yaml:"database" doc:"database name (default: keep the file's)"`
	User              string `yaml:"user" doc:"database user (default: keep the file's)"`
	Password          string `yaml:"password" secret:"allowed" doc:"database password, normally a ${secret} (default: keep the file's); never shown"`
	Secured           bool   `yaml:"secured" doc:"connect with TLS (ssl=true in the URL)"`
	SecuredValidation bool   `yaml:"secured_validation" doc:"with secured: also validate the server's certificate and host name"`
}

const (
	ovirtFormatShell      = "shell"
	ovirtFormatProperties = "properties"
	ovirtDefaultPort      = 5432
	ovirtDriver           = ovirtconf.Driver
	// propsPrefix is the key prefix of aaa/internal.properties, as the
	// aaa-jdbc extension's DataSourceProvider reads it.
	propsPrefix = "config.datasource."
)

// format is the file format, given or told by the file name.
func (c *OvirtDbConf) format() string {
	if c.Format != "" {
		return c.Format
	}
	if strings.HasSuffix(c.File, ".properties") {
		return ovirtFormatProperties
	}
	return ovirtFormatShell
}

func (c *OvirtDbConf) prefix() string {
	if c.Prefix == "" {
		return "ENGINE_DB"
	}
	return c.Prefix
}

func (c *OvirtDbConf) port() int {
	if c.Port == 0 {
		return ovirtDefaultPort
	}
	return c.Port
}

// Validate checks what the tags cannot: paths, ports, and values that
// cannot go into a JDBC URL.
func (c *OvirtDbConf) Validate() []Problem {
	ps := validateFile("file", c.File)
	if c.format() == ovirtFormatProperties && c.Prefix != "" && c.Prefix != "ENGINE_DB" {
		ps = append(ps, Problem{"prefix", "a properties file holds the engine database's datasource only; prefix applies to shell files"})
	}
	if c.Port < 0 || c.Port > 65535 {
		ps = append(ps, Problem{"port", fmt.Sprintf("%d is not a TCP port (1-65535)", c.Port)})
	}
	// Host and database end up inside jdbc:postgresql://HOST:PORT/DB?...;
	// these characters would change what the URL means.
	if c.Host != "" && (strings.ContainsAny(c.Host, "/?#@ \t\r\n\"\\$") || !utf8.ValidString(c.Host)) {
		ps = append(ps, Problem{"host", fmt.Sprintf("%q is not a host name or address", c.Host)})
	}
	if c.Database != "" && (strings.ContainsAny(c.Database, "/?#&: \t\r\n\"\\$") || !utf8.ValidString(c.Database)) {
		ps = append(ps, Problem{"database", fmt.Sprintf("%q cannot be used in a JDBC URL as it stands", c.Database)})
	}
	if strings.ContainsAny(c.User, "\r\n") {
		ps = append(ps, Problem{"user", "the user name holds a line break"})
	}
	// A secret's value is checked when it is revealed, before writing.
	if strings.ContainsAny(c.Password, "\r\n") {
		ps = append(ps, Problem{"password", "the password holds a line break, which the file cannot hold"})
	}
	if c.SecuredValidation && !c.Secured {
		// engine-setup forces validation off without TLS: there is no
		// certificate to validate.
		ps = append(ps, Problem{"secured_validation", "needs secured: true (there is no certificate to validate without TLS)"})
	}
	return ps
}

// Hosts is the step's host.
func (c *OvirtDbConf) Hosts(stepHost string) []string { return []string{stepHost} }

// Check reports done when the file already parses, as the engine reads
// it, to the wanted values and URL. A password is compared in memory.
func (c *OvirtDbConf) Check(ctx context.Context, rt *Runtime) (Check, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return Check{}, err
	}
	return e.check(ctx, rt)
}

// Describe shows the edit as a diff, passwords masked on both sides.
func (c *OvirtDbConf) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return []Action{{Host: rt.Host, Summary: "edit " + fileOn(rt.Host, c.File)}}, err
	}
	return e.describe(ctx, rt)
}

// Apply edits the file (after a backup) and re-reads it to verify.
func (c *OvirtDbConf) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	e, err := c.textEdit(rt)
	if err != nil {
		return Outcome{}, err
	}
	return e.apply(ctx, rt)
}

// textEdit builds the edit, with the password revealed.
func (c *OvirtDbConf) textEdit(rt *Runtime) (*textEdit, error) {
	loc := fileOn(rt.Host, c.File)
	var pw revealed
	if c.Password != "" {
		var err error
		if pw, err = reveal(rt, c.Password, true); err != nil {
			return nil, fmt.Errorf("%s: password: %w", loc, err)
		}
	}
	e := &textEdit{path: c.File}
	// The wanted keys depend on the file (the host, port and database it
	// keeps), so edit and verify share what edit worked out.
	var want []textedit.WantedKey
	if c.format() == ovirtFormatProperties {
		e.edit = func(old string) (res editResult, err error) {
			res, want, err = c.editProperties(old, pw)
			return res, err
		}
		e.verify = func(written string) error {
			doc, err := textedit.ParseProperties(written)
			if err != nil {
				return err
			}
			return textedit.CheckKeys(textedit.PropertyValues(doc), want)
		}
		return e, nil
	}
	e.edit = func(old string) (res editResult, err error) {
		res, want, err = c.editShell(old, pw)
		return res, err
	}
	e.verify = func(written string) error {
		conf, err := textedit.ParseShellConf(written)
		if err != nil {
			return err
		}
		if err := conf.Resolved(want); err != nil {
			return err
		}
		return textedit.CheckKeys(conf.Values, want)
	}
	return e, nil
}

// editShell works out the edit of a shell-like file and the keys it sets.
func (c *OvirtDbConf) editShell(old string, pw revealed) (editResult, []textedit.WantedKey, error) {
	conf, err := textedit.ParseShellConf(old)
	if err != nil {
		return editResult{}, nil, err
	}
	p := c.prefix() + "_"
	// current returns a value the URL is built from: given, or the file's.
	current := func(given, key, field string) (string, error) {
		if given != "" {
			return given, nil
		}
		if names := conf.Unresolved[p+key]; len(names) > 0 {
			return "", fmt.Errorf("%s%s refers to ${%s}, which is not set earlier in the file, so its value is not known here; give %s", p, key, names[0], field)
		}
		v, ok := conf.Values[p+key]
		if !ok || v == "" {
			return "", fmt.Errorf("the file does not set %s%s, which the URL needs; give %s", p, key, field)
		}
		return v, nil
	}
	host, err := current(c.Host, "HOST", "host")
	if err != nil {
		return editResult{}, nil, err
	}
	db, err := current(c.Database, "DATABASE", "database")
	if err != nil {
		return editResult{}, nil, err
	}
	port := strconv.Itoa(c.port())

	// The order engine-setup writes them in (OvirtUtils.getDBConfig), which
	// is where keys the file lacks are appended.
	plain := func(k, v string) textedit.WantedKey { return textedit.WantedKey{Key: p + k, Value: v, Show: v} }
	var want []textedit.WantedKey
	if c.Host != "" {
		want = append(want, plain("HOST", c.Host))
	}
	want = append(want, plain("PORT", port))
	if c.User != "" {
		want = append(want, plain("USER", c.User))
	}
	if c.Password != "" {
		want = append(want, textedit.WantedKey{Key: p + "PASSWORD", Value: pw.value, Show: pw.show, Secret: true})
	}
	if c.Database != "" {
		want = append(want, plain("DATABASE", c.Database))
	}
	want = append(want, ovirtBool(p+"SECURED", c.Secured), ovirtBool(p+"SECURED_VALIDATION", c.SecuredValidation))
	// Only a file that lacks the driver gets it: there is one to choose.
	if _, ok := conf.Values[p+"DRIVER"]; !ok {
		want = append(want, plain("DRIVER", ovirtDriver))
	}
	want = append(want, plain("URL", jdbcURL(host, port, db, c.Secured, c.SecuredValidation)))

	cur := conf.Effective()
	ed, err := textedit.SetKeys(conf.Doc, "", want, cur, textedit.ShellCodec, looksSecret)
	if err != nil {
		return editResult{}, nil, err
	}
	add, err := textedit.NewKeyLines(ed.Missing, textedit.ShellCodec, textedit.FileEOL(conf.Doc.Lines))
	if err != nil {
		return editResult{}, nil, err
	}
	lines := textedit.AppendLines(textedit.Compact(ed.Lines), textedit.FileEOL(conf.Doc.Lines), add...)
	return editResult{
		text:    textedit.JoinText(lines),
		oldShow: ed.OldShow,
		newShow: textedit.JoinShow(lines),
		what:    ed.What,
	}, want, nil
}

// editProperties works out the edit of aaa/internal.properties, which
// engine-setup writes (config/aaajdbc.py, _setupAuth) as
//
//	config.datasource.jdbcurl=URL
//	config.datasource.dbuser=USER
//	config.datasource.dbpassword=PASSWORD
//	config.datasource.jdbcdriver=org.postgresql.Driver
//	config.datasource.schemaname=aaa_jdbc
//
// Host and database live in the URL only; those not given come from it.
func (c *OvirtDbConf) editProperties(old string, pw revealed) (editResult, []textedit.WantedKey, error) {
	doc, err := textedit.ParseProperties(old)
	if err != nil {
		return editResult{}, nil, err
	}
	cur := textedit.PropertyValues(doc)
	host, db := c.Host, c.Database
	if host == "" || db == "" {
		u, ok := cur[propsPrefix+"jdbcurl"]
		if !ok {
			return editResult{}, nil, fmt.Errorf("the file does not set %sjdbcurl; give host and database", propsPrefix)
		}
		h, _, d, err := parseJdbcURL(u)
		if err != nil {
			return editResult{}, nil, fmt.Errorf("%sjdbcurl: %w; give host and database", propsPrefix, err)
		}
		if host == "" {
			host = h
		}
		if db == "" {
			db = d
		}
	}
	url := jdbcURL(host, strconv.Itoa(c.port()), db, c.Secured, c.SecuredValidation)
	want := []textedit.WantedKey{{Key: propsPrefix + "jdbcurl", Value: url, Show: url}}
	if c.User != "" {
		want = append(want, textedit.WantedKey{Key: propsPrefix + "dbuser", Value: c.User, Show: c.User})
	}
	if c.Password != "" {
		want = append(want, textedit.WantedKey{Key: propsPrefix + "dbpassword", Value: pw.value, Show: pw.show, Secret: true})
	}
	if _, ok := cur[propsPrefix+"jdbcdriver"]; !ok {
		want = append(want, textedit.WantedKey{Key: propsPrefix + "jdbcdriver", Value: ovirtDriver, Show: ovirtDriver})
	}
	ed, err := textedit.SetKeys(doc, "", want, cur, textedit.PropertiesCodec, looksSecret)
	if err != nil {
		return editResult{}, nil, err
	}
	add, err := textedit.NewKeyLines(ed.Missing, textedit.PropertiesCodec, textedit.FileEOL(doc.Lines))
	if err != nil {
		return editResult{}, nil, err
	}
	lines := textedit.AppendLines(textedit.Compact(ed.Lines), textedit.FileEOL(doc.Lines), add...)
	return editResult{
		text:    textedit.JoinText(lines),
		oldShow: ed.OldShow,
		newShow: textedit.JoinShow(lines),
		what:    ed.What,
	}, want, nil
}

// ovirtBool wants a boolean key spelled as engine-setup spells it (Python's
// str(bool): "True", "False"), accepting any spelling the engine reads the
// same way.
func ovirtBool(key string, v bool) textedit.WantedKey {
	s := "False"
	if v {
		s = "True"
	}
	return textedit.WantedKey{Key: key, Value: s, Show: s, Equal: func(cur string) bool {
		b, ok := engineBool(cur)
		return ok && b == v
	}}
}

// engineBool reads a boolean as the engine does.
func engineBool(s string) (v, ok bool) { return ovirtconf.Bool(s) }

// jdbcURL builds the URL the way engine-setup does (see ovirtconf.JdbcURL).
func jdbcURL(host, port, db string, secured, validated bool) string {
	return ovirtconf.JdbcURL(host, port, db, secured, validated)
}

// parseJdbcURL takes host, port and database out of a PostgreSQL JDBC URL.
func parseJdbcURL(u string) (host, port, db string, err error) { return ovirtconf.ParseJdbcURL(u) }
