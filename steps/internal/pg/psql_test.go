package pg

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
		if got := Ident(tt.in); got != tt.ident {
			t.Errorf("Ident(%q) = %s, want %s", tt.in, got, tt.ident)
		}
		if got := Literal(tt.in); got != tt.literal {
			t.Errorf("Literal(%q) = %s, want %s", tt.in, got, tt.literal)
		}
	}
}

func TestPsqlArgvAndRows(t *testing.T) {
	got := Target{Host: "/run/postgresql", Port: 5433, User: "engine", Database: "engine"}.PsqlArgv()
	want := []string{"psql", "-X", "-q", "-A", "-t", "-F", "\x1f", "-v", "ON_ERROR_STOP=1", "-d", "engine", "-h", "/run/postgresql", "-p", "5433", "-U", "engine"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("argv %q", got)
	}
	rows := ParseRows([]byte("a\x1fb\n\nc\x1f\n"))
	if !reflect.DeepEqual(rows, [][]string{{"a", "b"}, {"c", ""}}) {
		t.Fatalf("rows %q", rows)
	}
}
