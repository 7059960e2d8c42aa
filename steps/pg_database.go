package steps

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgDatabaseKind = Kind{
	Name:      "pg_database",
	Summary:   "create a PostgreSQL database with a given owner, encoding and locale, its extensions and per-database settings",
	NeedsHost: true,
	New:       func() Spec { return new(PgDatabase) },
}

var _ Spec = (*PgDatabase)(nil)

// PgDatabase creates a database the way the oVirt engine wants it
// (TEMPLATE template0 ENCODING 'UTF8' with an explicit locale), creates
// extensions in it as the superuser (the owner usually may not) and sets
// per-database parameters with ALTER DATABASE ... SET.
//
// An existing database that differs in owner, encoding or locale is an
// error naming every difference: fixing those means dropping it, which a
// migration step must never do on its own.
type PgDatabase struct {
	Name       string            `yaml:"name" required:"true" doc:"the database name, e.g. engine"`
	Owner      string            `yaml:"owner" doc:"the owning role (must exist); default: the os_user's role"`
	Template   string            `yaml:"template" default:"template0" doc:"the template to copy; template0 is required to choose an encoding and locale different from template1's"`
	Encoding   string            `yaml:"encoding" default:"UTF8" doc:"the database encoding"`
	LcCollate  string            `yaml:"lc_collate" doc:"LC_COLLATE, e.g. en_US.UTF-8 (must be in locale -a on the host); default: the server's"`
	LcCtype    string            `yaml:"lc_ctype" doc:"LC_CTYPE, e.g. en_US.UTF-8 (must be in locale -a on the host); default: the server's"`
	Extensions []string          `yaml:"extensions" doc:"extensions created in the database by the superuser, e.g. [uuid-ossp]"`
	Settings   map[string]string `yaml:"settings" doc:"parameters set for the database (ALTER DATABASE ... SET name = 'value'), e.g. {lc_messages: en_US.UTF-8} as engine-backup requires"`

	PgConnection `yaml:",inline"`
}

// Validate checks what the tags cannot.
func (d *PgDatabase) Validate() []Problem {
	var ps []Problem
	for _, k := range hostcmd.SortedKeys(d.Settings) {
		if !pg.ParamNameRE.MatchString(k) {
			ps = append(ps, Problem{"settings", fmt.Sprintf("%q is not a parameter name", k)})
		}
	}
	for _, e := range d.Extensions {
		if strings.TrimSpace(e) == "" {
			ps = append(ps, Problem{"extensions", "an extension name is empty"})
		}
	}
	return append(ps, d.PgConnection.validate("")...)
}

// Hosts is the step's host: the database server.
func (d *PgDatabase) Hosts(stepHost string) []string { return []string{stepHost} }

func (d *PgDatabase) template() string { return cmp.Or(d.Template, "template0") }
func (d *PgDatabase) encoding() string { return cmp.Or(d.Encoding, "UTF8") }

// pgDatabaseState is what the server says about the database.
type pgDatabaseState struct {
	exists          bool
	owner, encoding string
	collate, ctype  string
	extensions      map[string]bool
	settings        map[string]string // from pg_db_role_setting, role 0
}

// state reads the database, its extensions and its settings.
func (d *PgDatabase) state(ctx context.Context, ex executors.Executor) (pgDatabaseState, error) {
	var st pgDatabaseState
	rows, err := pg.Query(ctx, ex, d.target("postgres"), `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype,
  coalesce((SELECT array_to_string(setconfig, chr(30)) FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), '')
FROM pg_database d WHERE datname = `+pg.Literal(d.Name)+";\n")
	if err != nil {
		return st, err
	}
	if len(rows) == 0 {
		return st, nil
	}
	if len(rows[0]) != 5 {
		return st, fmt.Errorf("%s: unexpected pg_database row %q", ex.Name(), rows[0])
	}
	r := rows[0]
	st = pgDatabaseState{exists: true, owner: r[0], encoding: r[1], collate: r[2], ctype: r[3], settings: map[string]string{}}
	for _, kv := range strings.Split(r[4], "\x1e") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			st.settings[k] = v
		}
	}
	st.extensions = map[string]bool{}
	if len(d.Extensions) > 0 {
		rows, err := pg.Query(ctx, ex, d.target(d.Name), "SELECT extname FROM pg_extension;\n")
		if err != nil {
			return st, err
		}
		for _, r := range rows {
			st.extensions[r[0]] = true
		}
	}
	return st, nil
}

// conflicts lists how an existing database differs from the wanted one in
// what only dropping and recreating it could change.
func (d *PgDatabase) conflicts(st pgDatabaseState) []string {
	var out []string
	if d.Owner != "" && st.owner != d.Owner {
		out = append(out, fmt.Sprintf("owner is %s, want %s", st.owner, d.Owner))
	}
	if !strings.EqualFold(normEncoding(st.encoding), normEncoding(d.encoding())) {
		out = append(out, fmt.Sprintf("encoding is %s, want %s", st.encoding, d.encoding()))
	}
	if d.LcCollate != "" && pg.NormLocale(st.collate) != pg.NormLocale(d.LcCollate) {
		out = append(out, fmt.Sprintf("lc_collate is %s, want %s", st.collate, d.LcCollate))
	}
	if d.LcCtype != "" && pg.NormLocale(st.ctype) != pg.NormLocale(d.LcCtype) {
		out = append(out, fmt.Sprintf("lc_ctype is %s, want %s", st.ctype, d.LcCtype))
	}
	return out
}

// normEncoding makes UTF-8 and UTF8 compare equal, as PostgreSQL does.
func normEncoding(e string) string { return strings.ReplaceAll(strings.ToUpper(e), "-", "") }

// missing lists the extensions and settings still to add.
func (d *PgDatabase) missing(st pgDatabaseState) (exts, settings []string) {
	for _, e := range d.Extensions {
		if !st.extensions[e] {
			exts = append(exts, e)
		}
	}
	for _, k := range hostcmd.SortedKeys(d.Settings) {
		if v, ok := st.settings[k]; !ok || v != d.Settings[k] {
			settings = append(settings, k)
		}
	}
	return exts, settings
}

func (d *PgDatabase) conflictError(host string, conflicts []string) error {
	return fmt.Errorf("%s: database %s exists but differs: %s; migrun never drops a database: drop it yourself (or change the plan) if it holds nothing you need",
		host, d.Name, strings.Join(conflicts, "; "))
}

// Check is done when the database exists as wanted with its extensions
// and settings. A conflicting existing database is an error: no step can
// make it right.
func (d *PgDatabase) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	st, err := d.state(ctx, ex)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the server is not reachable yet: " + err.Error()}, nil
	}
	if err != nil {
		return Check{}, fmt.Errorf("database %s: %w", d.Name, err)
	}
	if !st.exists {
		if err := d.checkLocales(ctx, ex); err != nil {
			return Check{}, err
		}
		return Check{Reason: "database " + d.Name + " does not exist"}, nil
	}
	if c := d.conflicts(st); len(c) > 0 {
		return Check{}, d.conflictError(ex.Name(), c)
	}
	exts, settings := d.missing(st)
	var why []string
	if len(exts) > 0 {
		why = append(why, "extensions missing: "+strings.Join(exts, ", "))
	}
	if len(settings) > 0 {
		why = append(why, "settings to set: "+strings.Join(settings, ", "))
	}
	if len(why) > 0 {
		return Check{Reason: "database " + d.Name + " exists; " + strings.Join(why, "; ")}, nil
	}
	return Check{Done: true, Reason: "database " + d.Name + " exists as wanted"}, nil
}

// checkLocales makes sure the host has the locales the database asks for:
// CREATE DATABASE would fail otherwise, with a less helpful message.
func (d *PgDatabase) checkLocales(ctx context.Context, ex executors.Executor) error {
	var want []string
	for _, l := range []string{d.LcCollate, d.LcCtype} {
		if l != "" && l != "C" && l != "POSIX" {
			want = append(want, l)
		}
	}
	if len(want) == 0 {
		return nil
	}
	res, err := ex.Run(ctx, executors.Command{Argv: []string{"locale", "-a"}, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("list locales: %w", err)
	}
	have := map[string]bool{}
	for _, l := range strings.Fields(string(res.Stdout)) {
		have[pg.NormLocale(l)] = true
	}
	for _, l := range want {
		if !have[pg.NormLocale(l)] {
			return fmt.Errorf("%s: locale %s is not installed (not in locale -a); install it first (RHEL: glibc-langpack-en)", ex.Name(), l)
		}
	}
	return nil
}

// createSQL is the CREATE DATABASE statement.
func (d *PgDatabase) createSQL() string {
	var b strings.Builder
	b.WriteString("CREATE DATABASE " + pg.Ident(d.Name))
	if o := d.Owner; o != "" {
		b.WriteString(" OWNER " + pg.Ident(o))
	}
	b.WriteString(" TEMPLATE " + pg.Ident(d.template()) + " ENCODING " + pg.Literal(d.encoding()))
	if d.LcCollate != "" {
		b.WriteString(" LC_COLLATE " + pg.Literal(d.LcCollate))
	}
	if d.LcCtype != "" {
		b.WriteString(" LC_CTYPE " + pg.Literal(d.LcCtype))
	}
	return b.String() + ";\n"
}

// extensionSQL creates extensions, run connected to the database itself.
func extensionSQL(exts []string) string {
	var b strings.Builder
	for _, e := range exts {
		b.WriteString("CREATE EXTENSION IF NOT EXISTS " + pg.Ident(e) + ";\n")
	}
	return b.String()
}

func (d *PgDatabase) settingsSQL(keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		b.WriteString("ALTER DATABASE " + pg.Ident(d.Name) + " SET " + pg.Ident(k) + " = " + pg.Literal(d.Settings[k]) + ";\n")
	}
	return b.String()
}

// plan works out the statements: in database postgres (create, settings)
// and in the database itself (extensions). Without a server it plans
// everything.
func (d *PgDatabase) plan(st pgDatabaseState, known bool) (inPostgres, inDatabase string) {
	if !known || !st.exists {
		return d.createSQL() + d.settingsSQL(hostcmd.SortedKeys(d.Settings)), extensionSQL(d.Extensions)
	}
	exts, settings := d.missing(st)
	return d.settingsSQL(settings), extensionSQL(exts)
}

// Describe shows the SQL each psql would run.
func (d *PgDatabase) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	var st pgDatabaseState
	known := false
	if ex, err := rt.Executor(ctx, rt.Host); err == nil {
		if s, err := d.state(ctx, ex); err == nil {
			st, known = s, true
			if c := d.conflicts(st); st.exists && len(c) > 0 {
				return nil, d.conflictError(ex.Name(), c)
			}
		}
	}
	inPostgres, inDatabase := d.plan(st, known)
	var acts []Action
	add := func(db, sql string) {
		if sql == "" {
			return
		}
		acts = append(acts, Action{Host: rt.Host, Summary: pg.Action(rt.Host, d.target(db), sql)})
	}
	add("postgres", inPostgres)
	add(d.Name, inDatabase)
	if len(acts) == 0 {
		acts = append(acts, Action{Host: rt.Host, Summary: "database " + d.Name + " already as wanted: no change"})
	}
	return acts, nil
}

// Apply creates what is missing and reads the result back.
func (d *PgDatabase) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	st, err := d.state(ctx, ex)
	if err != nil {
		return Outcome{}, fmt.Errorf("database %s: %w", d.Name, err)
	}
	if st.exists {
		if c := d.conflicts(st); len(c) > 0 {
			return Outcome{}, d.conflictError(ex.Name(), c)
		}
	} else if err := d.checkLocales(ctx, ex); err != nil {
		return Outcome{}, err
	}
	inPostgres, inDatabase := d.plan(st, true)
	if inPostgres == "" && inDatabase == "" {
		return Outcome{Output: "database " + d.Name + " already as wanted"}, nil
	}
	var done []string
	if inPostgres != "" {
		// CREATE DATABASE cannot run in a transaction: psql without
		// --single-transaction runs each statement on its own.
		if _, err := pg.Exec(ctx, ex, d.target("postgres"), inPostgres); err != nil {
			return Outcome{Changed: true}, fmt.Errorf("database %s: %w", d.Name, err)
		}
		if !st.exists {
			done = append(done, "created database "+d.Name)
		}
	}
	if inDatabase != "" {
		if _, err := pg.Exec(ctx, ex, d.target(d.Name), inDatabase); err != nil {
			return Outcome{Changed: true}, fmt.Errorf("database %s: extensions: %w", d.Name, err)
		}
	}
	after, err := d.state(ctx, ex)
	if err != nil {
		return Outcome{Changed: true}, fmt.Errorf("database %s: read back: %w", d.Name, err)
	}
	if c := d.conflicts(after); !after.exists || len(c) > 0 {
		return Outcome{Changed: true}, fmt.Errorf("%s: database %s after the change: exists=%v %s", ex.Name(), d.Name, after.exists, strings.Join(c, "; "))
	}
	if exts, settings := d.missing(after); len(exts)+len(settings) > 0 {
		return Outcome{Changed: true}, fmt.Errorf("%s: database %s after the change still misses extensions %v, settings %v", ex.Name(), d.Name, exts, settings)
	}
	exts, settings := d.missing(st)
	if !st.exists {
		exts, settings = d.Extensions, hostcmd.SortedKeys(d.Settings)
	}
	if len(exts) > 0 {
		done = append(done, "extensions "+strings.Join(exts, ", "))
	}
	if len(settings) > 0 {
		done = append(done, "set "+strings.Join(settings, ", "))
	}
	return Outcome{Changed: true, Output: strings.Join(done, "; ")}, nil
}
