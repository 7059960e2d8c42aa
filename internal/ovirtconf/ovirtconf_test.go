package ovirtconf

import (
	"os"
	"path/filepath"
	"testing"
)

// The rules themselves are held by steps' TestShellConfParse through
// textedit.ParseShellConf; these cover what the engine stand-in adds.

func TestParseAssignments(t *testing.T) {
	f, err := Parse("# c\r\n  A=\"x y\" # tail\r\nB=${A}z\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Assignments) != 2 {
		t.Fatalf("assignments %+v", f.Assignments)
	}
	a := f.Assignments[0]
	if a.Line != 1 || a.Indent != "  " || a.Key != "A" || a.Value != "x y" || a.Raw[a.End:] != " # tail" {
		t.Errorf("A: %+v", a)
	}
	if v, ok := f.Get("B"); !ok || v != "x yz" {
		t.Errorf("B = %q %v", v, ok)
	}
}

func TestLoadDirOrderAndExpansion(t *testing.T) {
	dir := t.TempDir()
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10-setup-database.conf", "ENGINE_DB_HOST=\"localhost\"\nENGINE_DB_URL=\"jdbc:postgresql://localhost:5432/engine?sslfactory=x\"\n")
	write("20-later.conf", "ENGINE_DB_URL=\"jdbc:postgresql://${ENGINE_DB_HOST}:5433/other?ssl=true\"\n")
	write("05-early.conf", "ENGINE_DB_HOST=\"ignored\"\n")
	write("not-a-conf.txt", "ENGINE_DB_URL=nope\n")
	vals, files, err := LoadDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 || filepath.Base(files[0]) != "05-early.conf" || filepath.Base(files[2]) != "20-later.conf" {
		t.Errorf("files %v", files)
	}
	h, p, d, opts, err := ParseJdbcURLOptions(vals["ENGINE_DB_URL"])
	if err != nil || h != "localhost" || p != "5433" || d != "other" || opts["ssl"] != "true" {
		t.Errorf("URL %q: %s %s %s %v %v", vals["ENGINE_DB_URL"], h, p, d, opts, err)
	}
}

func TestBool(t *testing.T) {
	for s, want := range map[string]bool{"True": true, " yes ": true, "1": true, "False": false, "n": false} {
		if v, ok := Bool(s); !ok || v != want {
			t.Errorf("Bool(%q) = %v %v", s, v, ok)
		}
	}
	if _, ok := Bool("maybe"); ok {
		t.Error("Bool(maybe) ok")
	}
}
