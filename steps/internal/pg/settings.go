package pg

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
)

// Settings: what a running server's parameters are, how a value in a plan
// compares with one, and reloading the configuration files only once the
// server says they parse. pg_conf, pg_hba and pg_check share them.

// ShowFile asks the server for a file parameter (config_file, hba_file).
func ShowFile(ctx context.Context, ex executors.Executor, server Target, param string) (string, bool, error) {
	rows, err := Query(ctx, ex, server.On("postgres"), "SELECT current_setting("+Literal(param)+");\n")
	if NotReady(err) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("SHOW %s: %w", param, err)
	}
	if len(rows) != 1 || rows[0][0] == "" {
		return "", false, fmt.Errorf("%s: SHOW %s: no answer", ex.Name(), param)
	}
	return rows[0][0], true, nil
}

// Unquote is the value a postgresql.conf value stands for.
func Unquote(v string) string {
	if len(v) < 2 || !strings.HasPrefix(v, "'") || !strings.HasSuffix(v, "'") {
		return v
	}
	in := v[1 : len(v)-1]
	var b strings.Builder
	for i := 0; i < len(in); i++ {
		switch {
		case in[i] == '\'' && i+1 < len(in) && in[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case in[i] == '\\' && i+1 < len(in):
			b.WriteByte(in[i+1])
			i++
		default:
			b.WriteByte(in[i])
		}
	}
	return b.String()
}

// Setting is a row of pg_settings.
type Setting struct {
	Name, Value, Unit, Context, Vartype string
	PendingRestart                      bool
}

// Settings reads pg_settings for names as a new session of the os_user
// in database sees them. The session does not override lc_messages (as
// Query does, to parse messages): its value is one callers ask about.
func Settings(ctx context.Context, ex executors.Executor, server Target, database string, names []string) (map[string]Setting, error) {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = Literal(strings.ToLower(n))
	}
	cmd := server.On(database).PsqlCommand("SELECT name, setting, coalesce(unit, ''), context, vartype, pending_restart FROM pg_settings WHERE lower(name) IN ("+strings.Join(quoted, ", ")+");\n", true)
	cmd.Env = map[string]string{"LC_MESSAGES": "C"}
	res, err := ex.Run(ctx, cmd)
	if err != nil {
		return nil, fmt.Errorf("%s: psql: %w", ex.Name(), err)
	}
	out := map[string]Setting{}
	for _, r := range ParseRows(res.Stdout) {
		if len(r) != 6 {
			return nil, fmt.Errorf("%s: unexpected pg_settings row %q", ex.Name(), r)
		}
		out[strings.ToLower(r[0])] = Setting{Name: r[0], Value: r[1], Unit: r[2], Context: r[3], Vartype: r[4], PendingRestart: r[5] == "t"}
	}
	return out, nil
}

// unitFactors are the units PostgreSQL accepts, in bytes and in
// milliseconds.
var unitFactors = map[string]float64{
	"B": 1, "kB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40,
	"us": 0.001, "ms": 1, "s": 1000, "min": 60000, "h": 3600000, "d": 86400000,
}

var numberUnitRE = regexp.MustCompile(`^\s*(-?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*([A-Za-z]*)\s*$`)

// Numeric converts v (e.g. "8MB", "150", "0.01") to a number in unit, a
// pg_settings unit such as "kB" or "8kB" ("" for unitless). A v without a
// unit is already in unit, as PostgreSQL reads it.
func Numeric(v, unit string) (float64, bool) {
	m := numberUnitRE.FindStringSubmatch(v)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	if m[2] == "" {
		return n, true
	}
	from, ok := unitFactors[m[2]]
	if !ok || unit == "" {
		return 0, false
	}
	um := numberUnitRE.FindStringSubmatch(unit)
	if um == nil {
		um = []string{unit, "1", unit}
	}
	mult := 1.0
	if strings.TrimSpace(um[1]) != "" {
		mult, _ = strconv.ParseFloat(um[1], 64)
	}
	base, ok := unitFactors[um[2]]
	if !ok || mult == 0 {
		return 0, false
	}
	return n * from / (base * mult), true
}

// ValueEquals reports whether want (as written in a plan) is the value
// s has: numerically in the setting's unit, booleans by meaning, locales
// by normalised name, anything else ignoring case as PostgreSQL does for
// enums.
func ValueEquals(s Setting, want string) bool {
	want = Unquote(want)
	switch s.Vartype {
	case "integer", "real":
		w, ok1 := Numeric(want, s.Unit)
		h, ok2 := Numeric(s.Value, s.Unit)
		return ok1 && ok2 && math.Abs(w-h) <= 1e-9*math.Max(1, math.Abs(h))
	case "bool":
		return Bool(want) == Bool(s.Value) && Bool(want) != ""
	}
	if strings.HasPrefix(s.Name, "lc_") {
		return NormLocale(want) == NormLocale(s.Value)
	}
	if s.Vartype == "enum" {
		return strings.EqualFold(want, s.Value)
	}
	return want == s.Value
}

// Bool reads PostgreSQL's boolean spellings; "" if v is none.
func Bool(v string) string {
	switch strings.ToLower(v) {
	case "on", "true", "yes", "1", "t", "y":
		return "on"
	case "off", "false", "no", "0", "f", "n":
		return "off"
	}
	return ""
}

// Reload checks that the files parse (view is pg_file_settings or
// pg_hba_file_rules, which read the files on disk, not what is loaded)
// and only then asks the server to reload: a reload of a broken file
// would be refused with nothing but a line in the server log.
func Reload(ctx context.Context, ex executors.Executor, server Target, view, errorCond string) error {
	msgs, err := FileProblems(ctx, ex, server, view, errorCond)
	if err != nil {
		return fmt.Errorf("check the edited file before reloading: %w", err)
	}
	if len(msgs) > 0 {
		return fmt.Errorf("%s: the server would not load the edited file (%s): %s; not reloaded", ex.Name(), view, strings.Join(msgs, "; "))
	}
	if _, err := Exec(ctx, ex, server.On("postgres"), "SELECT pg_reload_conf();\n"); err != nil {
		return fmt.Errorf("reload: %w", err)
	}
	return nil
}

// FileProblems lists the errors view reports in the files on disk, as
// "where: error", keeping the rows errorCond (SQL, "" for all) selects.
func FileProblems(ctx context.Context, ex executors.Executor, server Target, view, errorCond string) ([]string, error) {
	q := "SELECT coalesce(" + viewWhere(view) + ", ''), error FROM " + view + " WHERE error IS NOT NULL"
	if errorCond != "" {
		q += " AND " + errorCond
	}
	rows, err := Query(ctx, ex, server.On("postgres"), q+";\n")
	if err != nil {
		return nil, err
	}
	var msgs []string
	for _, r := range rows {
		msgs = append(msgs, strings.Join(r, ": "))
	}
	return msgs, nil
}

// viewWhere is the "where in the file" column text of a view's row.
func viewWhere(view string) string {
	if view == "pg_hba_file_rules" {
		return "'line ' || line_number"
	}
	return "sourcefile || ':' || sourceline"
}
