package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCLIReviewedPlanWorkflow: plan --out, show, apply FILE; drift, a
// changed plan and a wrong --expect-sha256 each refuse (exit 3) and
// change nothing; --detailed-exitcode says whether anything would change.
func TestCLIReviewedPlanWorkflow(t *testing.T) {
	planFile, dir := writePlan(t, localPlan)
	getenv := func(k string) string { return map[string]string{"TEST_PW": "very-secret-value"}[k] }
	vars := []string{"--var", "dir=" + dir}
	reviewed := filepath.Join(dir, "reviewed.json")

	code, _, errOut := cli(t, getenv, append([]string{"plan", planFile, "--out", reviewed, "--detailed-exitcode"}, vars...)...)
	if code != 4 {
		t.Fatalf("plan --out --detailed-exitcode: exit %d, want 4 (changes pending): %s", code, errOut)
	}
	data, err := os.ReadFile(reviewed)
	if err != nil {
		t.Fatal(err)
	}
	sha := fmt.Sprintf("%x", sha256.Sum256(data))
	if !strings.Contains(errOut, sha) {
		t.Errorf("plan --out does not print the file's sha256 %s:\n%s", sha, errOut)
	}
	if strings.Contains(string(data), "very-secret-value") {
		t.Fatal("the reviewed plan holds the secret")
	}

	for _, format := range []string{"text", "markdown"} {
		code, out, errOut := cli(t, nil, "show", "--output", format, reviewed)
		if code != 0 || !strings.Contains(out, "make-dir") || !strings.Contains(out, "mkdir -p "+dir+"/out") || !strings.Contains(out, sha) {
			t.Errorf("show --output %s: exit %d %s\n%s", format, code, errOut, out)
		}
	}

	// Drift: the directory the first step creates appears behind
	// migrun's back. The apply refuses, names it, and changes nothing.
	if err := os.Mkdir(filepath.Join(dir, "out"), 0o755); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = cli(t, getenv, "apply", reviewed)
	if code != 3 || !strings.Contains(errOut, "stat "+dir+"/out") || !strings.Contains(errOut, "Nothing was changed") {
		t.Fatalf("apply with drift: exit %d, want 3 naming %s/out:\n%s", code, dir, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, ".migrun")); !os.IsNotExist(err) {
		t.Errorf("a refused apply left state behind: %v", err)
	}
	os.Remove(filepath.Join(dir, "out"))

	// A --var that differs from the reviewed one is drift too.
	code, _, errOut = cli(t, getenv, "apply", reviewed, "--var", "dir=/elsewhere")
	if code != 3 || !strings.Contains(errOut, "variable dir") {
		t.Fatalf("apply with another --var: exit %d:\n%s", code, errOut)
	}

	// The approved digest must match.
	code, _, errOut = cli(t, getenv, "apply", reviewed, "--expect-sha256", strings.Repeat("0", 64))
	if code != 3 || !strings.Contains(errOut, "not the approved one") {
		t.Fatalf("apply with a wrong --expect-sha256: exit %d:\n%s", code, errOut)
	}

	// The plan file changed since the review.
	orig, _ := os.ReadFile(planFile)
	os.WriteFile(planFile, []byte(strings.Replace(string(orig), "mkdir, -p", "mkdir, -p, -v", 1)), 0o644)
	code, _, errOut = cli(t, getenv, "apply", reviewed)
	if code != 3 || !strings.Contains(errOut, "plan file "+planFile+" changed") {
		t.Fatalf("apply after the plan changed: exit %d:\n%s", code, errOut)
	}
	os.WriteFile(planFile, orig, 0o644)

	// As reviewed: it runs, and the journal names the reviewed file.
	code, out, errOut := cli(t, getenv, "apply", reviewed, "--expect-sha256", sha)
	if code != 0 || !strings.Contains(out, "completed") {
		t.Fatalf("apply as reviewed: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli(t, getenv, append([]string{"status", planFile}, vars...)...)
	if code != 0 || !strings.Contains(out, sha[:12]) {
		t.Errorf("status does not name the reviewed file %s:\n%s", sha[:12], out)
	}

	// Nothing left to do: exit 0.
	code, _, errOut = cli(t, getenv, append([]string{"plan", planFile, "--detailed-exitcode"}, vars...)...)
	if code != 0 {
		t.Errorf("plan --detailed-exitcode with nothing to do: exit %d: %s", code, errOut)
	}
}
