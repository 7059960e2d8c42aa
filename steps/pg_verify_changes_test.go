package steps

import (
	"reflect"
	"strings"
	"testing"
)

// The lines below are as a PostgreSQL 15 server's test_decoding printed
// them for pg_verify's query (pg_verify_since.go), newlines and \x1f
// already turned into spaces; only the toasted values are rebuilt with
// strings.Repeat.

// aB is "My Schema"."a.b" ("Id" bigint PRIMARY KEY, "we""ird col" text,
// "x]:y" int): inserts 1 and 2, moves 1 to 3, updates 2, deletes 2.
var aB = []string{
	`table "My Schema"."a.b": INSERT: "Id"[bigint]:1 "we""ird col"[text]:'it''s a '' '' test ]: new-tuple: x[y]:z' "x]:y"[integer]:5`,
	`table "My Schema"."a.b": INSERT: "Id"[bigint]:2 "we""ird col"[text]:null "x]:y"[integer]:null`,
	`table "My Schema"."a.b": UPDATE: old-key: "Id"[bigint]:1 new-tuple: "Id"[bigint]:3 "we""ird col"[text]:'it''s a '' '' test ]: new-tuple: x[y]:z' "x]:y"[integer]:5`,
	`table "My Schema"."a.b": UPDATE: "Id"[bigint]:2 "we""ird col"[text]:null "x]:y"[integer]:7`,
	`table "My Schema"."a.b": DELETE: "Id"[bigint]:2`,
}

// plain is public.plain (id bigint PRIMARY KEY, then one column of each
// awkward type): inserts, moves -5 to 10, deletes 10, updates the first.
var plain = []string{
	`table public.plain: INSERT: id[bigint]:9223372036854775807 t[text]:'line1 line2 sep ''q''' arr[integer[]]:'{1,2,NULL}' u[uuid]:'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' ts[timestamp with time zone]:'2024-01-02 01:04:05+00' vc[character varying]:'vc val' b[bit]:B'0101' vb[bit varying]:B'11' ok[boolean]:true n[numeric]:1.50 f[double precision]:NaN`,
	`table public.plain: INSERT: id[bigint]:-5 t[text]:null arr[integer[]]:null u[uuid]:null ts[timestamp with time zone]:null vc[character varying]:null b[bit]:null vb[bit varying]:null ok[boolean]:null n[numeric]:null f[double precision]:null`,
	`table public.plain: UPDATE: old-key: id[bigint]:-5 new-tuple: id[bigint]:10 t[text]:null arr[integer[]]:null u[uuid]:null ts[timestamp with time zone]:null vc[character varying]:null b[bit]:null vb[bit varying]:null ok[boolean]:null n[numeric]:null f[double precision]:null`,
	`table public.plain: DELETE: id[bigint]:10`,
	`table public.plain: UPDATE: id[bigint]:9223372036854775807 t[text]:null arr[integer[]]:'{1,2,NULL}' u[uuid]:'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11' ts[timestamp with time zone]:'2024-01-02 01:04:05+00' vc[character varying]:'vc val' b[bit]:B'0101' vb[bit varying]:B'11' ok[boolean]:true n[numeric]:1.50 f[double precision]:NaN`,
}

// nopk is public.nopk (k text, v int) REPLICA IDENTITY FULL: an old
// tuple is the whole row, less its NULLs (the DELETE of v 2).
var nopk = []string{
	`table public.nopk: INSERT: k[text]:'a b' v[integer]:1`,
	`table public.nopk: INSERT: k[text]:null v[integer]:2`,
	`table public.nopk: INSERT: k[text]:'it''s' v[integer]:3`,
	`table public.nopk: UPDATE: old-key: k[text]:'a b' v[integer]:1 new-tuple: k[text]:'a b' v[integer]:10`,
	`table public.nopk: UPDATE: old-key: k[text]:'it''s' v[integer]:3 new-tuple: k[text]:'moved' v[integer]:3`,
	`table public.nopk: DELETE: k[text]:'moved' v[integer]:3`,
	`table public.nopk: DELETE: v[integer]:2`,
}

func TestDecodedChanges(t *testing.T) {
	bigX := strings.Repeat("x", 100000)
	bigK := strings.Repeat("k", 5000)
	bigP := strings.Repeat("p", 2500)
	type want map[string]tableChanges
	tests := []struct {
		name  string
		lines []string
		keys  map[string]string // keyOf; a table absent has no chunk key
		want  want
		err   string // a part of the error, "" for none
	}{
		{
			name:  "none",
			lines: nil,
			keys:  map[string]string{"public.t": "id"},
			want:  want{},
		},
		{
			name:  "quoted names, key moved and deleted",
			lines: aB,
			keys:  map[string]string{`"My Schema"."a.b"`: `"Id"`},
			want:  want{`"My Schema"."a.b"`: {values: []string{"1", "2", "3"}}},
		},
		{
			name:  "key holding quotes, spaces and markers",
			lines: []string{aB[0], aB[1], aB[3]},
			keys:  map[string]string{`"My Schema"."a.b"`: `"we""ird col"`},
			want:  want{`"My Schema"."a.b"`: {null: true, values: []string{"it's a ' ' test ]: new-tuple: x[y]:z"}}},
		},
		{
			name:  "key named with ]:",
			lines: []string{aB[0], aB[1], aB[3]},
			keys:  map[string]string{`"My Schema"."a.b"`: `"x]:y"`},
			want:  want{`"My Schema"."a.b"`: {null: true, values: []string{"5", "7"}}},
		},
		{
			name:  "key outside the old key",
			lines: aB,
			keys:  map[string]string{`"My Schema"."a.b"`: `"x]:y"`},
			want:  want{`"My Schema"."a.b"`: {whole: true, null: true, values: []string{"5", "7"}}},
		},
		{
			name:  "bigint key moved, deleted, repeated",
			lines: plain,
			keys:  map[string]string{"public.plain": "id"},
			want:  want{"public.plain": {values: []string{"9223372036854775807", "-5", "10"}}},
		},
		{
			name:  "key type with spaces",
			lines: plain[:2],
			keys:  map[string]string{"public.plain": "ts"},
			want:  want{"public.plain": {null: true, values: []string{"2024-01-02 01:04:05+00"}}},
		},
		{
			name:  "array key",
			lines: plain[:2],
			keys:  map[string]string{"public.plain": "arr"},
			want:  want{"public.plain": {null: true, values: []string{"{1,2,NULL}"}}},
		},
		{
			name:  "bit key",
			lines: plain[:2],
			keys:  map[string]string{"public.plain": "b"},
			want:  want{"public.plain": {null: true, values: []string{"0101"}}},
		},
		{
			name:  "last column key",
			lines: plain[:2],
			keys:  map[string]string{"public.plain": "f"},
			want:  want{"public.plain": {null: true, values: []string{"NaN"}}},
		},
		{
			name: "numeric key",
			lines: []string{
				`table public."select": INSERT: id[numeric]:Infinity "Ünï"[date]:'2024-02-03'`,
				`table public."select": INSERT: id[numeric]:-0.0015 "Ünï"[date]:'infinity'`,
				`table public."select": INSERT: id[numeric]:NaN "Ünï"[date]:null`,
				`table public."select": UPDATE: old-key: id[numeric]:NaN new-tuple: id[numeric]:7 "Ünï"[date]:null`,
			},
			keys: map[string]string{`public."select"`: "id"},
			want: want{`public."select"`: {values: []string{"Infinity", "-0.0015", "NaN", "7"}}},
		},
		{
			name: "text key moved, duplicates",
			lines: []string{
				`table public.textkey: INSERT: k[text]:'x' v[integer]:1`,
				`table public.textkey: INSERT: k[text]:'it''s ]: new-tuple: "q"' v[integer]:2`,
				`table public.textkey: INSERT: k[text]:'' v[integer]:3`,
				`table public.textkey: UPDATE: old-key: k[text]:'x' new-tuple: k[text]:'y' v[integer]:1`,
				`table public.textkey: DELETE: k[text]:''`,
			},
			keys: map[string]string{"public.textkey": "k"},
			want: want{"public.textkey": {values: []string{"x", `it's ]: new-tuple: "q"`, "", "y"}}},
		},
		{
			name: "columns named like markers, quoted type array",
			lines: []string{
				`table public.odd: INSERT: "new-tuple"[integer]:1 e["My Schema"."odd]ty""pe"[]]:'{a]:b,c}' "old-key:"[text]:' new-tuple: '`,
				`table public.odd: UPDATE: old-key: "new-tuple"[integer]:1 new-tuple: "new-tuple"[integer]:2 e["My Schema"."odd]ty""pe"[]]:'{a]:b,c}' "old-key:"[text]:' new-tuple: '`,
			},
			keys: map[string]string{"public.odd": `"new-tuple"`},
			want: want{"public.odd": {values: []string{"1", "2"}}},
		},
		{
			name: "column after a quoted type",
			lines: []string{
				`table public."Mixed": INSERT: id[integer]:1 c["my type"]:'(1,"a b")' "select"[integer]:2 "col with space"[text]:'sp ace'`,
			},
			keys: map[string]string{`public."Mixed"`: `"col with space"`},
			want: want{`public."Mixed"`: {values: []string{"sp ace"}}},
		},
		{
			name:  "identity full",
			lines: nopk[:6],
			keys:  map[string]string{"public.nopk": "k"},
			want:  want{"public.nopk": {null: true, values: []string{"a b", "it's", "moved"}}},
		},
		{
			name:  "identity full, a NULL key deleted",
			lines: nopk,
			keys:  map[string]string{"public.nopk": "k"},
			want:  want{"public.nopk": {whole: true, null: true, values: []string{"a b", "it's", "moved"}}},
		},
		{
			name: "identity full, an all-NULL row updated",
			lines: []string{
				`table public.allnull: INSERT: a[integer]:null b[text]:null`,
				`table public.allnull: UPDATE: old-key: new-tuple: a[integer]:1 b[text]:null`,
			},
			keys: map[string]string{"public.allnull": "a"},
			want: want{"public.allnull": {whole: true, null: true, values: []string{"1"}}},
		},
		{
			name: "old key of an identity index",
			lines: []string{
				`table public.byidx: INSERT: a[integer]:1 b[integer]:2 c[text]:'c'`,
				`table public.byidx: UPDATE: a[integer]:1 b[integer]:2 c[text]:'d'`,
				`table public.byidx: UPDATE: old-key: a[integer]:1 b[integer]:2 new-tuple: a[integer]:1 b[integer]:3 c[text]:'d'`,
				`table public.byidx: DELETE: a[integer]:1 b[integer]:3`,
			},
			keys: map[string]string{"public.byidx": "a"},
			want: want{"public.byidx": {values: []string{"1"}}},
		},
		{
			name: "identity nothing",
			lines: []string{
				`table public.nothing: INSERT: k[integer]:1 v[integer]:1`,
				`table public.nothing: UPDATE: k[integer]:1 v[integer]:2`,
				`table public.nothing: DELETE: (no-tuple-data)`,
			},
			keys: map[string]string{"public.nothing": "k"},
			want: want{"public.nothing": {whole: true, values: []string{"1"}}},
		},
		{
			name: "no columns",
			lines: []string{
				`table public.nocols: INSERT:`,
				`table public.nocols: DELETE: (no-tuple-data)`,
			},
			keys: map[string]string{"public.nocols": "k"},
			want: want{"public.nocols": {whole: true}},
		},
		{
			name: "toasted column not the key",
			lines: []string{
				`table public.toasty: INSERT: id[integer]:1 big[text]:'` + bigX + `' other[integer]:1`,
				`table public.toasty: UPDATE: id[integer]:1 big[text]:unchanged-toast-datum other[integer]:2`,
				`table public.toasty: UPDATE: old-key: id[integer]:1 new-tuple: id[integer]:2 big[text]:unchanged-toast-datum other[integer]:2`,
				`table public.toasty: DELETE: id[integer]:2`,
			},
			keys: map[string]string{"public.toasty": "id"},
			want: want{"public.toasty": {values: []string{"1", "2"}}},
		},
		{
			name: "unchanged-toast-datum key",
			lines: []string{
				`table public.toasty: UPDATE: id[integer]:1 big[text]:unchanged-toast-datum other[integer]:2`,
			},
			keys: map[string]string{"public.toasty": "big"},
			want: want{"public.toasty": {whole: true}},
		},
		{
			name: "toasted key, identity full",
			lines: []string{
				`table public.toastkey: INSERT: k[text]:'` + bigK + `' other[integer]:1`,
				`table public.toastkey: UPDATE: old-key: k[text]:'` + bigK + `' other[integer]:1 new-tuple: k[text]:unchanged-toast-datum other[integer]:2`,
				`table public.toastkey: DELETE: k[text]:'` + bigK + `' other[integer]:2`,
			},
			keys: map[string]string{"public.toastkey": "k"},
			want: want{"public.toastkey": {whole: true, values: []string{bigK}}},
		},
		{
			name: "toasted primary key",
			lines: []string{
				`table public.bigpk: INSERT: k[text]:'` + bigP + `' other[integer]:1`,
				`table public.bigpk: UPDATE: old-key: k[text]:'` + bigP + `' new-tuple: k[text]:unchanged-toast-datum other[integer]:2`,
			},
			keys: map[string]string{"public.bigpk": "k"},
			want: want{"public.bigpk": {whole: true, values: []string{bigP}}},
		},
		{
			name: "truncate",
			lines: []string{
				`table public.plain: INSERT: id[bigint]:-5 t[text]:null arr[integer[]]:null u[uuid]:null ts[timestamp with time zone]:null vc[character varying]:null b[bit]:null vb[bit varying]:null ok[boolean]:null n[numeric]:null f[double precision]:null`,
				`table public.t1, public.t2: TRUNCATE: (no-flags)`,
				`table public.t1: TRUNCATE: restart_seqs cascade`,
				`table public.nothing, "My Schema"."a.b": TRUNCATE: restart_seqs`,
			},
			keys: map[string]string{"public.plain": "id", "public.t1": "id", "public.t2": "id", `"My Schema"."a.b"`: `"Id"`},
			want: want{
				"public.plain":      {values: []string{"-5"}},
				"public.t1":         {whole: true},
				"public.t2":         {whole: true},
				"public.nothing":    {whole: true},
				`"My Schema"."a.b"`: {whole: true},
			},
		},
		{
			name: "tables without a chunk key",
			lines: []string{
				`table public.nopk_default: INSERT: k[integer]:1 v[integer]:1`,
				`table public."new line": INSERT: "a b"[integer]:1`,
				`table public.textkey: INSERT: k[text]:'x' v[integer]:1`,
			},
			keys: map[string]string{"public.textkey": "k", "public.plain": "id"},
			want: want{
				"public.nopk_default": {whole: true},
				`public."new line"`:   {whole: true},
				"public.textkey":      {values: []string{"x"}},
			},
		},
		{
			name: "several tables",
			lines: []string{
				aB[0],
				plain[1],
				aB[1],
				nopk[1],
				plain[0],
			},
			keys: map[string]string{`"My Schema"."a.b"`: `"Id"`, "public.plain": "id", "public.nopk": "k"},
			want: want{
				`"My Schema"."a.b"`: {values: []string{"1", "2"}},
				"public.plain":      {values: []string{"-5", "9223372036854775807"}},
				"public.nopk":       {null: true},
			},
		},

		{name: "not a change", lines: []string{"BEGIN"}, err: `decoded change "BEGIN": not a "table ..." change`},
		{name: "unqualified", lines: []string{`table t: INSERT: id[integer]:1`}, err: "schema-qualified"},
		{name: "upper case bare name", lines: []string{`table public.T: INSERT: id[integer]:1`}, err: "at byte 13: expected a name"},
		{name: "unterminated quoted name", lines: []string{`table "public.t: INSERT: id[integer]:1`}, err: "unterminated quoted name"},
		{name: "no colon", lines: []string{`table public.t INSERT: id[integer]:1`}, err: `expected ": "`},
		{name: "unknown action", lines: []string{`table public.t: UPSERT: id[integer]:1`}, err: "expected INSERT, UPDATE, DELETE or TRUNCATE"},
		{name: "several tables inserted", lines: []string{`table public.t, public.u: INSERT: id[integer]:1`}, err: "several tables"},
		{name: "truncate flag", lines: []string{`table public.t: TRUNCATE: restart`}, err: `unknown TRUNCATE flag "restart"`},
		{name: "truncate without flags", lines: []string{`table public.t: TRUNCATE:`}, err: "expected TRUNCATE's flags"},
		{name: "old key alone", lines: []string{`table public.t: UPDATE: old-key: id[integer]:1`}, err: `expected " new-tuple:"`},
		{name: "text after no tuple", lines: []string{`table public.t: DELETE: (no-tuple-data) id[integer]:1`}, err: "after (no-tuple-data)"},
		{name: "unterminated value", lines: []string{`table public.t: INSERT: id[integer]:1 t[text]:'it''s`}, err: "unterminated quoted value"},
		{name: "unterminated type", lines: []string{`table public.t: INSERT: id[integer:1`}, err: "unterminated column type"},
		{name: "no type", lines: []string{`table public.t: INSERT: id:1`}, err: "expected [ after a column name"},
		{name: "empty type", lines: []string{`table public.t: INSERT: id[]:1`}, err: "empty column type"},
		{name: "no colon after type", lines: []string{`table public.t: INSERT: id[integer] 1`}, err: "expected : after a column type"},
		{name: "no value", lines: []string{`table public.t: INSERT: id[integer]: t[text]:'a'`}, err: "expected a value"},
		{name: "no value at the end", lines: []string{`table public.t: INSERT: id[integer]:`}, err: "expected a value"},
		{name: "text after a quoted value", lines: []string{`table public.t: INSERT: t[text]:'a'b id[integer]:1`}, err: "expected a space before a column"},
		{name: "two spaces", lines: []string{`table public.t: INSERT: id[integer]:1  t[text]:'a'`}, err: "expected a name"},
		{name: "key twice", lines: []string{`table public.t: INSERT: id[integer]:1 id[integer]:2`}, keys: map[string]string{"public.t": "id"}, err: "column id twice"},
		{
			name:  "error after good lines",
			lines: []string{aB[0], `table public.t: INSERT: id[integer]:1 t[text]:'a`},
			keys:  map[string]string{`"My Schema"."a.b"`: `"Id"`},
			err:   `decoded change "table public.t: INSERT: id[integer]:1 t[text]:'a": at byte 46: unterminated quoted value`,
		},
		{
			name:  "long line shortened",
			lines: []string{`table public.toasty: INSERT: id[integer]:1 big[text]:'` + bigX},
			err:   `decoded change "table public.toasty: INSERT: id[integer]:1 big[text]:'` + bigX[:66] + `...": at byte 53: unterminated quoted value`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodedChanges(tt.lines, func(table string) (string, bool) {
				k, ok := tt.keys[table]
				return k, ok
			})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one holding %q", err, tt.err)
				}
				if got != nil {
					t.Errorf("changes %v beside the error", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			flat := want{}
			for name, ch := range got {
				flat[name] = *ch
			}
			if !reflect.DeepEqual(flat, tt.want) {
				t.Errorf("changes\n %+v\nwant\n %+v", flat, tt.want)
			}
		})
	}
}
