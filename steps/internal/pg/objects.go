package pg

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// objectsSQL lists what makes a database not empty: schemas other
// than public, relations, functions, types and large objects, leaving out
// the members of extensions (a DBA may create those beforehand, and the
// restore's CREATE EXTENSION IF NOT EXISTS accepts them). Rows: total
// count, kind, name; a few names suffice.
const objectsSQL = `WITH o(kind, name) AS (
  SELECT 'schema', quote_ident(n.nspname) FROM pg_namespace n
  WHERE ` + UserSchemasSQL + ` AND n.nspname <> 'public'
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
  UNION ALL
  SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
    WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE 'type' END,
    quote_ident(n.nspname) || '.' || quote_ident(c.relname)
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f', 'c') AND ` + UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'function', quote_ident(n.nspname) || '.' || quote_ident(p.proname)
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
  WHERE ` + UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'type', quote_ident(n.nspname) || '.' || quote_ident(t.typname)
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
  WHERE t.typtype IN ('d', 'e', 'r') AND ` + UserSchemasSQL + `
    AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
  UNION ALL
  SELECT 'large object', l.oid::text FROM pg_largeobject_metadata l
)
SELECT count(*) OVER (), kind, name FROM o ORDER BY kind = 'table' DESC, kind, name LIMIT 3;
`

// Objects is a database's own objects: the count and a few names.
type Objects struct {
	Total int
	Names []string // "table public.t"
}

func (o Objects) String() string {
	s := hostcmd.Plural(o.Total, "object", "objects") + ": " + strings.Join(o.Names, ", ")
	if o.Total > len(o.Names) {
		s += ", …"
	}
	return s
}

// ReadObjects reads what database t holds of its own (the kinds that only
// fill an empty database, pg_stream and pg_replicate, refuse any other).
func ReadObjects(ctx context.Context, ex executors.Executor, t Target) (Objects, error) {
	rows, err := Query(ctx, ex, t, objectsSQL)
	if err != nil {
		return Objects{}, err
	}
	var o Objects
	for _, row := range rows {
		if len(row) != 3 {
			return Objects{}, fmt.Errorf("%s: unexpected psql output %q", ex.Name(), strings.Join(row, " "))
		}
		o.Total, _ = strconv.Atoi(row[0])
		o.Names = append(o.Names, row[1]+" "+row[2])
	}
	return o, nil
}

// RecreateHint is ", e.g. on HOST as USER: dropdb ... && createdb ..."
// for database t on host, with its owner, encoding and locale, or "" when
// they cannot be read.
func RecreateHint(ctx context.Context, ex executors.Executor, host string, t Target) string {
	rows, err := Query(ctx, ex, t.On("postgres"), `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
FROM pg_database WHERE datname = `+Literal(t.Database)+";\n")
	if err != nil || len(rows) != 1 || len(rows[0]) != 4 {
		return ""
	}
	r := rows[0]
	drop := append(append([]string{"dropdb"}, t.ConnArgv()...), t.Database)
	create := append(append([]string{"createdb"}, t.ConnArgv()...),
		"-T", "template0", "-O", r[0], "-E", r[1], "--lc-collate="+r[2], "--lc-ctype="+r[3], t.Database)
	return fmt.Sprintf(", e.g. on %s as %s: %s && %s (and redo any ALTER DATABASE ... SET, GRANT or CREATE EXTENSION you had prepared in it)",
		host, t.RunAs(), executors.QuoteArgv(drop), executors.QuoteArgv(create))
}
