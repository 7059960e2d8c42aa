package steps

import (
	"reflect"
	"testing"
)

func TestPgQuoting(t *testing.T) {
	tests := []struct{ in, ident, literal string }{
		{"engine", `"engine"`, `'engine'`},
		{`we"ird`, `"we""ird"`, `'we"ird'`},
		{`it's\x`, `"it's\x"`, `'it''s\x'`},
	}
	for _, tt := range tests {
		if got := pgIdent(tt.in); got != tt.ident {
			t.Errorf("pgIdent(%q) = %s, want %s", tt.in, got, tt.ident)
		}
		if got := pgLiteral(tt.in); got != tt.literal {
			t.Errorf("pgLiteral(%q) = %s, want %s", tt.in, got, tt.literal)
		}
	}
}

func TestPsqlArgvAndRows(t *testing.T) {
	got := pgTarget{Host: "/run/pg", Port: 5433, User: "engine", Database: "engine"}.psqlArgv()
	want := []string{"psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-d", "engine", "-h", "/run/pg", "-p", "5433", "-U", "engine"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("argv %q", got)
	}
	rows := parseRows([]byte("a\x1fb\n\nc\x1f\n"))
	if !reflect.DeepEqual(rows, [][]string{{"a", "b"}, {"c", ""}}) {
		t.Fatalf("rows %q", rows)
	}
}
