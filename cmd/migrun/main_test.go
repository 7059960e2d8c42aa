package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/steps"
)

// cli runs migrun in-process and returns its exit code and output.
func cli(t *testing.T, getenv func(string) string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	err := run(context.Background(), args, env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, getenv: getenv})
	return exitCode(err), stdout.String(), stderr.String()
}

// secretEnv is the environment localPlan's secret comes from.
func secretEnv(k string) string {
	if k == "TEST_PW" {
		return "very-secret-value"
	}
	return ""
}

const localPlan = `version: 1
name: cli-test
vars:
  dir: /nonexistent
secrets:
  pw: {env: TEST_PW}
hosts:
  here: {local: true}
steps:
  - id: make-dir
    host: here
    command:
      argv: [mkdir, -p, "${dir}/out"]
      creates: ${dir}/out
  - id: write-secret
    host: here
    description: secret on stdin
    command:
      script: cat > "${dir}/out/secret"
      stdin: ${pw}
      creates: ${dir}/out/secret
  - id: copy-it
    copy: {from: "here:${dir}/out/secret", to: "${dir}/copy", mode: "0600"}
`

func writePlan(t *testing.T, text string) (planFile, dir string) {
	t.Helper()
	dir = t.TempDir()
	planFile = filepath.Join(dir, "plan.yaml")
	if err := os.WriteFile(planFile, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return planFile, dir
}

func TestCLIApplyLifecycle(t *testing.T) {
	planFile, dir := writePlan(t, localPlan)
	getenv := secretEnv
	vars := []string{"--var", "dir=" + dir}

	code, out, errOut := cli(t, getenv, append([]string{"validate"}, append(vars, planFile)...)...)
	if code != 0 || !strings.Contains(out, "ok: plan cli-test, 3 step(s)") {
		t.Fatalf("validate: %d %q %q", code, out, errOut)
	}

	// Dry run: every step shown, nothing written (not even the state dir).
	code, out, errOut = cli(t, getenv, append([]string{"plan"}, append(vars, planFile)...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"make-dir", "write-secret", "copy-it", "would change"} {
		if !strings.Contains(out, want) {
			t.Fatalf("plan output lacks %q:\n%s", want, out)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("dry run wrote into %s: %v", dir, entries)
	}

	code, out, errOut = cli(t, getenv, append([]string{"apply", planFile, "--yes"}, vars...)...)
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "copy")); string(got) != "very-secret-value" {
		t.Fatalf("copied file holds %q", got)
	}
	if !strings.Contains(out, "completed") {
		t.Fatalf("apply output:\n%s", out)
	}

	// One-shot: a second apply is refused with exit 3.
	code, _, errOut = cli(t, getenv, append([]string{"apply", "--yes", planFile}, vars...)...)
	if code != 3 || !strings.Contains(errOut, "already completed") {
		t.Fatalf("second apply: exit %d, %q", code, errOut)
	}

	code, out, _ = cli(t, getenv, append([]string{"status", planFile}, vars...)...)
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "copy-it") {
		t.Fatalf("status: %d\n%s", code, out)
	}

	// The secret is nowhere in migrun's state.
	filepath.Walk(filepath.Join(dir, ".migrun"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte("very-secret-value")) {
				t.Errorf("%s holds the secret", p)
			}
		}
		return nil
	})
}

func TestCLIJSONEvents(t *testing.T) {
	planFile, dir := writePlan(t, localPlan)
	getenv := func(k string) string { return map[string]string{"TEST_PW": "pw-value"}[k] }
	code, out, errOut := cli(t, getenv, "apply", "--yes", "--output", "json", "--var", "dir="+dir, planFile)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var types []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var e struct{ Type, Step, Status string }
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %q", sc.Text())
		}
		types = append(types, e.Type)
	}
	if types[0] != "run_start" || types[len(types)-1] != "run_end" || strings.Count(strings.Join(types, " "), "step_end") != 3 {
		t.Fatalf("event types %v", types)
	}
	if strings.Contains(out, "pw-value") {
		t.Fatal("secret in JSON events")
	}
}

// TestCLIJSONShapes: every key of the JSON output is snake_case, the dry
// run's actions included, and status of a plan never applied is an object
// with a status, not null.
func TestCLIJSONShapes(t *testing.T) {
	planFile, dir := writePlan(t, localPlan)
	vars := []string{"--var", "dir=" + dir}
	code, out, errOut := cli(t, nil, append([]string{"plan", "--offline", "--output", "json", planFile}, vars...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d: %s", code, errOut)
	}
	keyRE := regexp.MustCompile(`"([A-Za-z_]+)":`)
	for _, m := range keyRE.FindAllStringSubmatch(out, -1) {
		if m[1] != strings.ToLower(m[1]) {
			t.Errorf("key %q is not snake_case in:\n%s", m[1], out)
			break
		}
	}
	if !strings.Contains(out, `"actions":[{"host":"here","summary":`) {
		t.Errorf("no action with host and summary keys:\n%s", out)
	}
	code, out, _ = cli(t, nil, append([]string{"status", "--output", "json", planFile}, vars...)...)
	var st struct{ Plan, Status, Journal string }
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil || st.Status != "never_applied" || st.Plan == "" || st.Journal == "" {
		t.Errorf("status --output json of a plan never applied: exit %d, %q (%v)", code, out, err)
	}
}

func TestCLIInvalidPlanExit2(t *testing.T) {
	planFile, _ := writePlan(t, `version: 1
name: bad
hosts:
  here: {local: true}
steps:
  - id: one
    host: nowhere
    command: "true"
    bogus: 1
`)
	code, _, errOut := cli(t, nil, "plan", planFile)
	if code != 2 {
		t.Fatalf("exit %d, want 2: %s", code, errOut)
	}
	for _, want := range []string{"plan.yaml:7:", "nowhere", "plan.yaml:9:", "bogus", `"one"`} {
		if !strings.Contains(errOut, want) {
			t.Fatalf("errors lack %q:\n%s", want, errOut)
		}
	}
}

func TestCLIUsageErrors(t *testing.T) {
	tests := [][]string{
		{},
		{"frobnicate"},
		{"plan"},
		{"apply", "a.yaml", "b.yaml"},
		{"apply", "--resume", "--restart", "a.yaml"},
		{"plan", "--output", "xml", "a.yaml"},
		{"plan", "--var", "novalue", "a.yaml"},
		{"doc", "no-such-kind"},
	}
	for _, args := range tests {
		if code, _, errOut := cli(t, nil, args...); code != 2 {
			t.Errorf("migrun %v: exit %d, want 2 (%s)", args, code, errOut)
		}
	}
}

func TestCLIDoc(t *testing.T) {
	code, out, _ := cli(t, nil, "steps")
	if code != 0 || !strings.Contains(out, "command") || !strings.Contains(out, "copy") {
		t.Fatalf("steps: %d %s", code, out)
	}
	code, out, _ = cli(t, nil, "doc", "copy")
	if code != 0 || !strings.Contains(out, "from") || !strings.Contains(out, "required") {
		t.Fatalf("doc copy: %d %s", code, out)
	}
}

func TestTerminalProgress(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(0, 0)
	p := &termProgress{w: &buf, now: func() time.Time { return now }}
	b := p.Start(steps.Task{Label: "engine:/a -> db:/a", Unit: steps.UnitBytes, Total: 100 << 20, Done: 10 << 20}) // resumed at 10 MiB
	for i := 0; i < 9; i++ {
		now = now.Add(time.Second)
		b.Add(10 << 20)
	}
	b.Done(nil)
	out := buf.String()
	// One line redrawn in place: every draw starts with \r and clears it,
	// and only the final one ends the line.
	if strings.Count(out, "\n") != 1 || !strings.HasSuffix(out, "\n") || strings.Count(out, "\r\033[K") != 10 {
		t.Fatalf("draws:\n%q", out)
	}
	final := out[strings.LastIndex(out, "\r\033[K"):]
	if !strings.Contains(final, "100 MiB / 100 MiB (100%)") || !strings.Contains(final, "10 MiB/s") {
		t.Fatalf("final line %q: want totals and the rate of this run's bytes only", final)
	}
	if got := bar(50, 100, 10); got != "[=====>    ]" {
		t.Fatalf("bar = %q", got)
	}

	// Counted tasks show their unit, without a byte rate.
	buf.Reset()
	b = p.Start(steps.Task{Label: "restore", Unit: steps.UnitItems, Total: 40})
	now = now.Add(time.Second)
	b.Add(10)
	if got := buf.String(); !strings.Contains(got, "restore: 10 items / 40 items (25%)") || strings.Contains(got, "/s") {
		t.Errorf("items line %q", got)
	}
	// A step running with no bar shows its time; the next line clears it.
	buf.Reset()
	now = now.Add(2 * time.Second)
	p.running("wait-engine", 12*time.Second)
	p.clear()
	if got := buf.String(); got != "\r\033[K    wait-engine: running, 12s\r\033[K" {
		t.Errorf("running line %q", got)
	}
}

func TestStatusNamesTheDetections(t *testing.T) {
	if got := detectedLine(&runner.Journal{}); got != "" {
		t.Errorf("no detections: %q", got)
	}
	j := &runner.Journal{Detected: map[string]bool{"keycloak_db": false, "dwh_db": true}}
	if got, want := detectedLine(j), "Detected when the run started (a resume goes on with these): dwh_db = true, keycloak_db = false"; got != want {
		t.Errorf("detectedLine = %q, want %q", got, want)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, exitOK},
		{fmt.Errorf("%w: step x: check: unlogged", runner.ErrRefused), exitRefused},
		{fmt.Errorf("wrapped: %w", runner.ErrLocked), exitRefused},
		{errors.New("a step failed"), exitFailed},
		{fmt.Errorf("interrupted: %w", context.Canceled), exitInterrupted},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestHelp: asked-for help is on standard output with exit 0, for every
// command and however it is asked; a wrong flag is a usage error on
// stderr.
func TestHelp(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"apply", "-h"}, "Usage: migrun apply [flags] PLAN"},
		{[]string{"help", "apply"}, "Usage: migrun apply [flags] PLAN"},
		{[]string{"validate", "--help"}, "Usage: migrun validate"},
		{[]string{"status", "-h"}, "Usage: migrun status"},
		{[]string{"doc", "-h"}, "Usage: migrun doc KIND"},
		{[]string{"help", "steps"}, "Usage: migrun steps"},
		{[]string{"help"}, "migrun runs migration plans"},
		{[]string{"-v"}, "migrun dev"},
	}
	for _, tt := range tests {
		code, out, errOut := cli(t, nil, tt.args...)
		if code != exitOK || !strings.Contains(out, tt.want) || errOut != "" {
			t.Errorf("migrun %v: exit %d, stdout %q, stderr %q; want 0 and %q on stdout", tt.args, code, out, errOut, tt.want)
		}
	}
	// validate and status contact no host: their help leaves the SSH
	// flags out, though they accept them; plan's lists them.
	for cmd, listed := range map[string]bool{"validate": false, "status": false, "plan": true, "apply": true} {
		_, out, _ := cli(t, nil, cmd, "-h")
		for _, f := range sshFlags {
			if got := strings.Contains(out, "-"+f); got != listed {
				t.Errorf("%s -h lists -%s: %v, want %v", cmd, f, got, listed)
			}
		}
		if !strings.Contains(out, "-var key=value") {
			t.Errorf("%s -h lacks -var:\n%s", cmd, out)
		}
	}
	if code, out, errOut := cli(t, nil, "validate", "--known-hosts", "/dev/null", "--identity", "key", "--connect-timeout", "3s", "../../plans/demo-local.yaml"); code != exitOK {
		t.Errorf("validate with SSH flags: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := cli(t, nil, "plan", "--bogus")
	if code != exitInvalid || out != "" || !strings.Contains(errOut, "flag provided but not defined: -bogus") {
		t.Errorf("a wrong flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

func TestVersionString(t *testing.T) {
	tests := []struct {
		stamped string
		b       buildInfo
		want    string
	}{
		{"v0.3.0", buildInfo{revision: "0123456789abcdef"}, "v0.3.0"},
		{"dev", buildInfo{module: "v0.3.1"}, "v0.3.1"},
		{"dev", buildInfo{module: "(devel)", revision: "0123456789abcdef", modified: true}, "dev-0123456789ab-modified"},
		{"dev", buildInfo{module: "(devel)", revision: "0123456789abcdef"}, "dev-0123456789ab"},
		{"dev", buildInfo{}, "dev"},
	}
	for _, tt := range tests {
		if got := versionString(tt.stamped, tt.b); got != tt.want {
			t.Errorf("versionString(%q, %+v) = %q, want %q", tt.stamped, tt.b, got, tt.want)
		}
	}
}

func TestCLIApplyTrace(t *testing.T) {
	planFile, dir := writePlan(t, localPlan)
	getenv := secretEnv
	vars := []string{"--var", "dir=" + dir}

	// A trace file that cannot be created is refused before anything runs.
	code, _, errOut := cli(t, getenv, append([]string{"apply", "--yes", "--trace", filepath.Join(dir, "no", "such", "dir", "t.tsv"), planFile}, vars...)...)
	if code != 2 || !strings.Contains(errOut, "--trace") {
		t.Fatalf("unwritable trace: exit %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "out")); !os.IsNotExist(err) {
		t.Fatalf("a refused apply ran a step: %v", err)
	}

	trace := filepath.Join(dir, "trace.tsv")
	if code, out, errOut := cli(t, getenv, append([]string{"apply", "--yes", "--trace", trace, planFile}, vars...)...); code != 0 {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	data, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	for _, want := range []string{"\tlock\t", "\tmake-dir\there\trun mkdir -p ", "\twrite-secret\t-\tjournal append, synced (running)\t", "\tcopy-it\there\t"} {
		if !strings.Contains(text, want) {
			t.Errorf("the trace lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "very-secret-value") {
		t.Errorf("the trace holds the secret:\n%s", text)
	}
	if fi, err := os.Stat(trace); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("trace file mode: %v %v", fi.Mode(), err)
	}
}
