package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

const hbaEngine = "host    engine          engine          10.0.0.5/32             scram-sha-256"

func TestLineValidate(t *testing.T) {
	tests := []struct {
		name string
		l    Line
		want []string
	}{
		{"present", Line{File: "/etc/hosts", Line: "10.0.0.5 db"}, nil},
		{"absent by regexp", Line{File: "/etc/hosts", State: "absent", Regexp: `\bdb$`}, nil},
		{"no line", Line{File: "/etc/hosts"}, []string{"line: give the line"}},
		{"absent nothing", Line{File: "/etc/hosts", State: "absent"}, []string{": give the line to remove"}},
		{"line break", Line{File: "/x", Line: "a\nb"}, []string{"line: line break"}},
		{"both anchors", Line{File: "/x", Line: "a", After: "b", Before: "c"}, []string{"before: not both"}},
		{"absent with anchor", Line{File: "/x", Line: "a", State: "absent", After: "b", Create: true},
			[]string{"after: only places", "create: no use"}},
		{"bad regexp", Line{File: "/x", Line: "a", Regexp: "(", Before: "["}, []string{"regexp: missing closing )", "before: missing closing ]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertProblems(t, tt.l.Validate(), tt.want)
		})
	}
}

func TestLineGolden(t *testing.T) {
	tests := []struct {
		name string
		spec Line
		note string // expected in the Describe summary
	}{
		{"append", Line{Line: hbaEngine}, ""},
		{"after", Line{Line: hbaEngine, After: `^# IPv4 local`}, "after line 6"},
		{"after-no-match", Line{Line: hbaEngine, After: `^# nothing`}, "no line matches after: adding the line at the end"},
		{"before", Line{Line: hbaEngine, Before: `^host\s`}, "before line 7"},
		{"before-no-match", Line{Line: hbaEngine, Before: `^# nothing`}, "no line matches before: adding the line at the start"},
		// lineinfile's regexp: the (last) matching line is replaced.
		{"regexp", Line{Line: hbaEngine, Regexp: `^host\s+engine\s`}, "replace line 8"},
		{"absent", Line{State: "absent", Line: "host    engine          engine          0.0.0.0/0               md5"}, "remove 1 line (8)"},
		{"absent-regexp", Line{State: "absent", Regexp: `ident$`}, "remove 2 lines (7, 10)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testdataFile(t, "line", "pg_hba.conf", t.TempDir(), 0o600)
			spec := tt.spec
			spec.File = p
			if ps := spec.Validate(); len(ps) > 0 {
				t.Fatalf("Validate: %v", ps)
			}
			rt := editRuntime(executors.NewLocal("engine"), nil)
			acts, err := spec.Describe(context.Background(), rt)
			if err != nil || !strings.Contains(acts[0].Summary, tt.note) {
				t.Errorf("Describe = %+v, %v; want the summary to say %q", acts, err, tt.note)
			}
			applyAndConverge(t, &spec, rt, p)
			assertGolden(t, "line", tt.name+".golden", readString(t, p))
		})
	}
}

// TestLineAlreadyThere: a line present anywhere is enough, whatever the
// anchor says; a regexp match that already is the line changes nothing.
func TestLineAlreadyThere(t *testing.T) {
	existing := "host    engine          engine          0.0.0.0/0               md5"
	for _, spec := range []Line{
		{Line: existing},
		{Line: existing, After: `^# IPv6`},
		{Line: existing, Regexp: `^host\s+engine\s`},
	} {
		p := testdataFile(t, "line", "pg_hba.conf", t.TempDir(), 0o600)
		spec.File = p
		rt := editRuntime(executors.NewLocal("engine"), nil)
		if chk, err := spec.Check(context.Background(), rt); err != nil || !chk.Done {
			t.Errorf("%+v: Check = %+v, %v; want done", spec, chk, err)
		}
		if out, err := spec.Apply(context.Background(), rt); err != nil || out.Changed || len(backupsOf(t, p)) != 0 {
			t.Errorf("%+v: Apply = %+v, %v; want no change, no backup", spec, out, err)
		}
	}
}

func TestLineEdges(t *testing.T) {
	tests := []struct {
		name, in string
		spec     Line
		want     string
	}{
		{"no final newline", "a\nb", Line{Line: "c"}, "a\nb\nc\n"},
		{"crlf file", "a\r\nb\r\n", Line{Line: "c", After: "^a$"}, "a\r\nc\r\nb\r\n"},
		{"empty file", "", Line{Line: "c", Before: "x"}, "c\n"},
		{"absent last line without newline", "a\nb", Line{State: "absent", Line: "b"}, "a\n"},
		{"regexp replaces the last match only", "k=1\nk=2\n", Line{Line: "k=3", Regexp: "^k="}, "k=1\nk=3\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "f")
			writeFile(t, p, []byte(tt.in), 0o644)
			spec := tt.spec
			spec.File = p
			if _, err := spec.Apply(context.Background(), editRuntime(executors.NewLocal("engine"), nil)); err != nil {
				t.Fatal(err)
			}
			if got := readString(t, p); got != tt.want {
				t.Errorf("file = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLineCreateAndMissing(t *testing.T) {
	ctx := context.Background()
	rt := editRuntime(executors.NewLocal("engine"), secret.Values{"pw": "hunter2"})
	p := filepath.Join(t.TempDir(), ".pgpass")

	absent := &Line{File: p, State: "absent", Line: "x"}
	if chk, err := absent.Check(ctx, rt); err != nil || !chk.Done {
		t.Errorf("absent on a missing file: Check = %+v, %v; want done", chk, err)
	}
	spec := &Line{File: p, Line: "db:5432:*:engine:" + secret.Token("pw")}
	if _, err := spec.Apply(ctx, rt); err == nil {
		t.Fatalf("Apply without create on a missing file succeeded")
	}
	spec.Create = true
	acts, err := spec.Describe(ctx, rt)
	if err != nil || !strings.Contains(acts[0].Diff, "+db:5432:*:engine:<secret:pw>") || strings.Contains(acts[0].Diff+acts[0].Summary, "hunter2") {
		t.Fatalf("Describe = %+v, %v; want the line masked", acts, err)
	}
	if _, err := spec.Apply(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if got := readString(t, p); got != "db:5432:*:engine:hunter2\n" {
		t.Errorf("file = %q", got)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600 for a line holding a secret", fi.Mode().Perm())
	}
	// A secret already in the file is masked in later diffs too.
	more := &Line{File: p, Line: "other:5432:*:engine:x"}
	acts, err = more.Describe(ctx, rt)
	if err != nil || strings.Contains(acts[0].Diff, "hunter2") {
		t.Errorf("Describe = %+v, %v; the secret value shows", acts, err)
	}
}

func TestLineDryRun(t *testing.T) {
	p := testdataFile(t, "line", "pg_hba.conf", t.TempDir(), 0o600)
	assertDryRun(t, &Line{File: p, Line: hbaEngine, After: "^# IPv4"}, nil, p)
}
