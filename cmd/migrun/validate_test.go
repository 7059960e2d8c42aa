package main

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const (
	validPlanText = `version: 1
name: good
hosts:
  here: {local: true}
steps:
  - {id: one, host: here, command: "true"}
`
	// Two problems: a bad enum at line 6 and an unknown key at line 7.
	invalidPlanText = `version: 1
name: bad
hosts:
  here: {local: true}
steps:
  - {id: one, host: here, service: {name: x, state: sleeping}}
  - {id: two, host: here, command: "true", bogus: 1}
`
	notAPlanText = "title: shopping list\nitems: [milk]\n"
)

// writeTree writes files (path relative to a new directory: text) and
// returns the directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// validateLine is either JSON line validate prints.
type validateLine struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Column   int      `json:"column"`
	Step     string   `json:"step"`
	Field    string   `json:"field"`
	Message  string   `json:"message"`
	Severity string   `json:"severity"`
	Plan     string   `json:"plan"`
	OK       bool     `json:"ok"`
	Hosts    []string `json:"hosts"`
}

func parseValidateJSON(t *testing.T, out string) []validateLine {
	t.Helper()
	var lines []validateLine
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var l validateLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		lines = append(lines, l)
	}
	return lines
}

func TestValidateText(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"good.yaml":       validPlanText,
		"bad.yaml":        invalidPlanText,
		"sub/good2.yml":   validPlanText,
		"sub/notes.txt":   "not yaml, not looked at",
		".hidden/x.yaml":  invalidPlanText, // skipped: hidden
		"sub/.also.yaml":  invalidPlanText, // skipped: hidden
		"lists/list.yaml": notAPlanText,
		"empty/notes.txt": "no plans in here",
	})
	good, bad := filepath.Join(dir, "good.yaml"), filepath.Join(dir, "bad.yaml")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   []string // lines, in order
		inStderr []string
	}{
		{name: "one good file", args: []string{good}, code: 0,
			stdout: []string{good + ": ok: plan good, 1 step(s), 0 on_failure, hosts here"}},
		{name: "good and bad files", args: []string{bad, good}, code: 2,
			stdout: []string{good + ": ok: plan good, 1 step(s), 0 on_failure, hosts here"},
			inStderr: []string{
				bad + `:6:53: step "one": service.state: "sleeping" is not one of`,
				bad + `:7:44: step "two": unknown key "bogus"`,
				bad + ": 2 problem(s); nothing was contacted or changed",
			}},
		{name: "a directory", args: []string{dir}, code: 2,
			stdout: []string{
				good + ": ok: plan good, 1 step(s), 0 on_failure, hosts here",
				filepath.Join(dir, "sub", "good2.yml") + ": ok: plan good, 1 step(s), 0 on_failure, hosts here",
			},
			inStderr: []string{
				bad + ": 2 problem(s)",
				filepath.Join(dir, "lists", "list.yaml") + `:1:1: unknown key "title"`,
				filepath.Join(dir, "lists", "list.yaml") + `:1:1: missing required key "steps"`,
			}},
		{name: "a directory and a file in it once", args: []string{filepath.Join(dir, "sub"), filepath.Join(dir, "sub", "good2.yml")}, code: 0,
			stdout: []string{filepath.Join(dir, "sub", "good2.yml") + ": ok: plan good, 1 step(s), 0 on_failure, hosts here"}},
		{name: "a file that is not there", args: []string{good, filepath.Join(dir, "nope.yaml")}, code: 2,
			stdout:   []string{good + ": ok: plan good, 1 step(s), 0 on_failure, hosts here"},
			inStderr: []string{filepath.Join(dir, "nope.yaml") + ": cannot read: no such file or directory"}},
		{name: "a directory without plans", args: []string{filepath.Join(dir, "empty")}, code: 2,
			inStderr: []string{"no plans here"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := cli(t, nil, append([]string{"validate"}, tt.args...)...)
			if code != tt.code {
				t.Errorf("exit %d, want %d\n%s%s", code, tt.code, out, errOut)
			}
			want := ""
			for _, l := range tt.stdout {
				want += l + "\n"
			}
			if out != want {
				t.Errorf("stdout:\n%swant:\n%s", out, want)
			}
			for _, want := range tt.inStderr {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if strings.Contains(out+errOut, "x.yaml") {
				t.Errorf("a hidden file was validated:\n%s%s", out, errOut)
			}
		})
	}
}

func TestValidateJSON(t *testing.T) {
	dir := writeTree(t, map[string]string{
		"a-good.yaml": validPlanText,
		"b-bad.yaml":  invalidPlanText,
		"c-list.yml":  notAPlanText,
	})
	code, out, errOut := cli(t, nil, "validate", "--output", "json", dir, filepath.Join(dir, "missing.yaml"))
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
	}
	if errOut != "" {
		t.Errorf("stderr with --output json: %q", errOut)
	}
	lines := parseValidateJSON(t, out)
	want := []validateLine{
		{File: filepath.Join(dir, "a-good.yaml"), Plan: "good", OK: true, Hosts: []string{"here"}},
		{File: filepath.Join(dir, "b-bad.yaml"), Line: 6, Column: 53, Step: "one", Field: "service.state", Severity: "error"},
		{File: filepath.Join(dir, "b-bad.yaml"), Line: 7, Column: 44, Step: "two", Severity: "error"},
	}
	if len(lines) < len(want)+3 {
		t.Fatalf("%d lines:\n%s", len(lines), out)
	}
	for i, w := range want {
		got := lines[i]
		got.Message = ""
		if !jsonLineEqual(got, w) {
			t.Errorf("line %d = %+v, want %+v", i, lines[i], w)
		}
	}
	if !strings.Contains(lines[2].Message, `unknown key "bogus"`) {
		t.Errorf("message %q", lines[2].Message)
	}
	var listProblems int
	for _, l := range lines[3:] {
		if l.OK || l.Severity != "error" || l.Message == "" {
			t.Errorf("not a problem: %+v", l)
		}
		if l.File == filepath.Join(dir, "c-list.yml") {
			listProblems++
		}
	}
	last := lines[len(lines)-1]
	if listProblems == 0 || last.File != filepath.Join(dir, "missing.yaml") || !strings.HasPrefix(last.Message, "cannot read:") {
		t.Errorf("want problems of c-list.yml and then missing.yaml, got:\n%s", out)
	}

	code, out, _ = cli(t, nil, "validate", "--output", "json", filepath.Join(dir, "a-good.yaml"))
	if lines := parseValidateJSON(t, out); code != 0 || len(lines) != 1 || !lines[0].OK {
		t.Errorf("a good plan: exit %d\n%s", code, out)
	}
}

func jsonLineEqual(a, b validateLine) bool {
	return a.File == b.File && a.Line == b.Line && a.Column == b.Column && a.Step == b.Step &&
		a.Field == b.Field && a.Severity == b.Severity && a.Plan == b.Plan && a.OK == b.OK &&
		slices.Equal(a.Hosts, b.Hosts)
}

func TestValidateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"validate"},
		{"validate", "--output", "xml", "plan.yaml"},
	} {
		if code, _, errOut := cli(t, nil, args...); code != 2 || errOut == "" {
			t.Errorf("migrun %v: exit %d, want 2 and a message", args, code)
		}
	}
}
