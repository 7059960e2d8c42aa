package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestShippedPlans: every plan in plans/ loads and renders its dry run
// offline, so a shipped plan can never be broken by a change to a kind.
func TestShippedPlans(t *testing.T) {
	files, err := filepath.Glob("../../plans/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no shipped plans found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if code, out, errOut := cli(t, nil, "validate", f); code != 0 {
				t.Fatalf("validate: exit %d\n%s%s", code, out, errOut)
			}
			code, out, errOut := cli(t, nil, "plan", "--offline", f)
			if code != 0 {
				t.Fatalf("plan --offline: exit %d\n%s%s", code, out, errOut)
			}
			if !strings.Contains(out, "nothing checked (--offline)") {
				t.Fatalf("plan --offline output:\n%s", out)
			}
			// No secret is set (cli's environment has none): offline,
			// none is needed, and none is shown.
			if strings.Contains(out+errOut, "not resolved") || strings.Contains(out+errOut, "migrun-offline-") {
				t.Fatalf("plan --offline without secrets:\n%s%s", out, errOut)
			}
		})
	}
}
