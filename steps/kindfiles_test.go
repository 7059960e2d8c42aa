package steps

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestKindFilesKeepToThemselves enforces "one kind, one file": a kind's
// files (KIND.go and KIND_*.go) use the contract (step.go, registry.go,
// schema.go, progress.go), the shared files that are no kind's, the
// packages under steps/internal, and their own identifiers, never those
// declared in another kind's files.
func TestKindFilesKeepToThemselves(t *testing.T) {
	fset := token.NewFileSet()
	names, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range Builtin().Kinds() {
		kinds = append(kinds, k.Name)
	}
	owner := func(file string) string { return kindOfFile(file, kinds) }

	files := map[string]*ast.File{}
	declaredIn := map[string]string{} // package-level identifier -> file
	for _, name := range names {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = f
		for _, d := range f.Decls {
			for _, id := range topLevelNames(d) {
				if id != "_" {
					declaredIn[id] = name
				}
			}
		}
	}

	var got []string
	for name, f := range files {
		user := owner(name)
		if user == "" {
			continue
		}
		seen := map[string]bool{}
		for _, id := range unresolvedIdents(f) {
			def, ok := declaredIn[id]
			if !ok || owner(def) == "" || owner(def) == user {
				continue
			}
			entry := name + ": " + id + " (" + def + ")"
			if !seen[entry] {
				seen[entry] = true
				got = append(got, entry)
			}
		}
	}
	sort.Strings(got)
	for _, e := range got {
		t.Errorf("%s: a kind file uses another kind's identifier; move what they share to a package under steps/internal (or a shared file of no kind)", e)
	}
}

// kindOfFile is the kind whose file name is, KIND.go or KIND_*.go (the
// longest kind name that fits), or "" for a file of no kind.
func kindOfFile(file string, kinds []string) string {
	base := strings.TrimSuffix(file, ".go")
	best := ""
	for _, k := range kinds {
		if (base == k || strings.HasPrefix(base, k+"_")) && len(k) > len(best) {
			best = k
		}
	}
	return best
}

func topLevelNames(d ast.Decl) []string {
	var out []string
	switch d := d.(type) {
	case *ast.FuncDecl:
		if d.Recv == nil {
			out = append(out, d.Name.Name)
		}
	case *ast.GenDecl:
		for _, s := range d.Specs {
			switch s := s.(type) {
			case *ast.TypeSpec:
				out = append(out, s.Name.Name)
			case *ast.ValueSpec:
				for _, n := range s.Names {
					out = append(out, n.Name)
				}
			}
		}
	}
	return out
}

// unresolvedIdents are the identifiers f uses that the parser could not
// resolve inside f: package-level names of other files (and universe
// names, which no file declares). Selectors' right-hand sides and
// composite literals' field keys name fields and methods, not package
// identifiers, and are skipped.
func unresolvedIdents(f *ast.File) []string {
	skip := map[*ast.Ident]bool{}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncDecl:
			skip[n.Name] = true // a method's name is not resolved
		case *ast.SelectorExpr:
			skip[n.Sel] = true
		case *ast.KeyValueExpr:
			if id, ok := n.Key.(*ast.Ident); ok {
				skip[id] = true
			}
		case *ast.Ident:
			if n.Obj == nil && !skip[n] {
				out = append(out, n.Name)
			}
		}
		return true
	})
	return out
}

func TestKindOfFile(t *testing.T) {
	kinds := []string{"copy", "pg_verify", "pg_replicate", "pg_restore", "pg_role", "line"}
	for _, tt := range []struct{ file, want string }{
		{"copy.go", "copy"},
		{"copy_direct.go", "copy"},
		{"pg_verify_baseline.go", "pg_verify"},
		{"pg_replicate_identity.go", "pg_replicate"},
		{"pg_role.go", "pg_role"},
		{"pgsql.go", ""},
		{"host.go", ""},
		{"lines.go", ""},
		{"copyright.go", ""},
	} {
		if got := kindOfFile(tt.file, kinds); got != tt.want {
			t.Errorf("kindOfFile(%q) = %q, want %q", tt.file, got, tt.want)
		}
	}
}

// TestEveryKindHasADryRunEqualsApplyTest enforces that each kind's tests
// hold a dry run against what apply then did: applyShown (every command
// and file change apply made was shown), hostKindCase (the host kinds'
// shared case, which does the same) or applyAndConverge (the file edits:
// the dry run's diff is the change). pg_dump and pg_restore are tested as
// a pair, with the comparison of what they copied, in pg_verify_test.go.
func TestEveryKindHasADryRunEqualsApplyTest(t *testing.T) {
	tests, err := filepath.Glob("*_test.go")
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, k := range Builtin().Kinds() {
		kinds = append(kinds, k.Name)
	}
	pairedWith := map[string]string{"pg_dump": "pg_verify", "pg_restore": "pg_verify"}
	covered := map[string]bool{}
	for _, name := range tests {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		src := string(data)
		if !strings.Contains(src, "applyShown(") && !strings.Contains(src, "[]hostKindCase{") && !strings.Contains(src, "applyAndConverge(t") {
			continue
		}
		if k := kindOfFile(strings.TrimSuffix(name, "_test.go")+".go", kinds); k != "" {
			covered[k] = true
		}
	}
	for _, k := range kinds {
		if !covered[k] && !covered[pairedWith[k]] {
			t.Errorf("kind %s: no test compares its dry run with what its apply did (applyShown, hostKindCase, applyAndConverge)", k)
		}
	}
}
