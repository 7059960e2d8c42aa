//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// reviewedFile is the part of a reviewed-plan file the test reads.
type reviewedFile struct {
	Steps []struct {
		ID         string `json:"id"`
		Kind       string `json:"kind"`
		Status     string `json:"status"`
		KnownAfter string `json:"known_after"`
		Actions    []struct {
			Summary string `json:"summary"`
		} `json:"actions"`
		Facts []struct {
			Host string `json:"host"`
			What string `json:"what"`
		} `json:"facts"`
	} `json:"steps"`
}

// TestHeadlineReviewedPlan: a saved dry run of the headline plan is
// applied exactly, and refused when a host drifted since the review.
func TestHeadlineReviewedPlan(t *testing.T) {
	resetHosts(t)
	pw := enginePassword(t)
	known := env["MIGRUN_E2E_KNOWN_HOSTS"]
	state := t.TempDir()
	reviewed := filepath.Join(t.TempDir(), "reviewed.json")

	res := runMigrun(t, known, headlinePlan(), append(append([]string{"plan", "--state-dir", state, "--out", reviewed}, engineDBOnly...), headlineVars()...)...)
	if res.code != 0 {
		t.Fatalf("plan --out: exit %d", res.code)
	}
	data, err := os.ReadFile(reviewed)
	if err != nil {
		t.Fatal(err)
	}
	sha := fmt.Sprintf("%x", sha256.Sum256(data))
	for _, form := range []string{pw, base64.StdEncoding.EncodeToString([]byte(pw))} {
		if strings.Contains(string(data), form) {
			t.Fatalf("the reviewed plan holds the password (as %q)", form)
		}
	}
	var rv reviewedFile
	if err := json.Unmarshal(data, &rv); err != nil {
		t.Fatal(err)
	}
	facts := 0
	for _, s := range rv.Steps {
		facts += len(s.Facts)
	}
	t.Logf("reviewed plan: %d bytes, %d steps, %d facts", len(data), len(rv.Steps), facts)
	hba := env["MIGRUN_E2E_PGDATA"] + "/pg_hba.conf"
	if !readsFact(rv, "db", "file "+hba) {
		t.Fatalf("no step of the review read db's %s", hba)
	}
	md, err := exec.Command(migrun, "show", "--output", "markdown", reviewed).CombinedOutput()
	if err != nil || !strings.Contains(string(md), "#### db") || !strings.Contains(string(md), "<details>") {
		t.Errorf("show --output markdown: %v\n%s", err, md)
	}

	// Drift: an administrator edits pg_hba.conf on db behind migrun's back.
	hbaOnHost := filepath.Join(env["MIGRUN_E2E_DB_DIR"], "fs", hba) // db's private dir, seen from here
	orig, err := os.ReadFile(hbaOnHost)
	if err != nil {
		t.Fatal(err)
	}
	sshOut(t, "db", "echo '# edited by hand' >> "+hba)
	before := fingerprint(t)
	res = runMigrun(t, known, reviewed, "apply", "--state-dir", state)
	if res.code != 3 {
		t.Errorf("apply after drift: exit %d, want 3", res.code)
	}
	if !strings.Contains(res.out, "  db:\n") || !strings.Contains(res.out, "file "+hba) {
		t.Errorf("the refusal does not name db's %s", hba)
	}
	if after := fingerprint(t); after != before {
		t.Errorf("a refused apply changed the hosts:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if entries, _ := os.ReadDir(state); len(entries) != 0 {
		t.Errorf("a refused apply wrote into the state dir: %v", entries)
	}
	// Put the file back as it was: the hosts are as reviewed again.
	if err := os.WriteFile(hbaOnHost, orig, 0o600); err != nil {
		t.Fatal(err)
	}

	// Drift in the firewall: a rule added on db before the review's
	// REJECT changes what iptables -S INPUT lists.
	sshOut(t, "db", "iptables -I INPUT 1 -p tcp --dport 9999 -j ACCEPT")
	res = runMigrun(t, known, reviewed, "apply", "--state-dir", state)
	if res.code != 3 || !strings.Contains(res.out, "run: iptables -S INPUT") {
		t.Errorf("apply after a firewall change: exit %d, want 3 naming iptables -S INPUT", res.code)
	}
	sshOut(t, "db", "iptables -D INPUT -p tcp --dport 9999 -j ACCEPT")

	res = runMigrun(t, known, reviewed, "apply", "--state-dir", state, "--expect-sha256", strings.Repeat("0", 64))
	if res.code != 3 || !strings.Contains(res.out, "not the approved one") {
		t.Errorf("apply with a wrong --expect-sha256: exit %d, want 3", res.code)
	}

	tablesBefore := tableCounts(t, "engine")
	res = runMigrun(t, known, reviewed, "apply", "--state-dir", state, "--expect-sha256", sha)
	if res.code != 0 {
		t.Fatalf("apply as reviewed: exit %d", res.code)
	}
	assertMigrated(t, state, tablesBefore)
	assertRanAsReviewed(t, rv, state)

	// What ran is what was reviewed: every command a step ran appears in
	// the actions the review showed for it, and every command the review
	// showed ran, for each step the review could tell exactly (would
	// change, with no earlier step changing its hosts first).
	j := journalOf(t, state)
	if rev, _ := j["reviewed"].(map[string]any); rev["sha256"] != sha {
		t.Errorf("journal reviewed = %v, want sha256 %s", j["reviewed"], sha)
	}
	ran := map[string][]string{}
	for _, s := range j["steps"].([]any) {
		rec := s.(map[string]any)
		for _, r := range asStrings(rec["ran"]) {
			ran[rec["id"].(string)] = append(ran[rec["id"].(string)], r)
		}
	}
	exact := 0
	for _, s := range rv.Steps {
		if s.Status != "would change" || s.KnownAfter != "" {
			continue
		}
		exact++
		var summaries []string
		for _, a := range s.Actions {
			summaries = append(summaries, a.Summary)
		}
		all := strings.Join(summaries, "\n")
		var cmds []string
		for _, r := range ran[s.ID] {
			_, cmd, _ := strings.Cut(r, ": ")
			if strings.HasPrefix(cmd, "write ") || strings.HasPrefix(cmd, "rename ") || strings.HasPrefix(cmd, "remove ") ||
				strings.HasPrefix(cmd, "set attributes ") || strings.HasPrefix(cmd, "mkdir ") {
				continue // file operations: reviewed as diffs
			}
			if i := strings.Index(cmd, ") "); strings.HasPrefix(cmd, "(as ") && i > 0 {
				cmd = cmd[i+2:]
			}
			cmds = append(cmds, cmd)
			if !strings.Contains(all, cmd) {
				t.Errorf("step %s ran %q, which the review did not show:\n%s", s.ID, cmd, all)
			}
		}
		for _, sum := range summaries {
			if !strings.HasPrefix(sum, "run on ") || verifiers[s.Kind] {
				continue // a verifier's actions are read-only probes, not changes
			}
			found := false
			for _, c := range cmds {
				found = found || strings.Contains(sum, c)
			}
			if !found {
				t.Errorf("step %s: the review showed %q, which did not run (ran %q)", s.ID, sum, cmds)
			}
		}
	}
	if exact < 2 {
		t.Errorf("only %d step(s) of the review were exact; want at least the first change on each host", exact)
	}

	res = runMigrun(t, known, headlinePlan(), append(append([]string{"status", "--state-dir", state}, engineDBOnly...), headlineVars()...)...)
	if !strings.Contains(res.out, sha) {
		t.Errorf("status does not name the reviewed file")
	}
}

// verifiers are the kinds that change nothing (steps.Verifier).
var verifiers = map[string]bool{"pg_check": true, "pg_verify": true, "wait": true}

func readsFact(rv reviewedFile, host, what string) bool {
	for _, s := range rv.Steps {
		for _, f := range s.Facts {
			if f.Host == host && f.What == what {
				return true
			}
		}
	}
	return false
}

func asStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// assertRanAsReviewed: every command a step's apply ran (the journal's
// "ran"; its writes, removes and renames aside) is one the reviewed dry
// run showed for that step, so the dry run and apply describe the same
// work.
func assertRanAsReviewed(t *testing.T, rv reviewedFile, state string) {
	t.Helper()
	shown := map[string]string{}
	for _, s := range rv.Steps {
		var b strings.Builder
		for _, a := range s.Actions {
			b.WriteString(a.Summary + "\n")
		}
		shown[s.ID] = b.String()
	}
	data, err := os.ReadFile(filepath.Join(state, "ovirt-engine-remote-db.journal.json"))
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Steps []struct {
			ID  string   `json:"id"`
			Ran []string `json:"ran"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, s := range j.Steps {
		for _, r := range s.Ran {
			cmd, ok := ranCommand(r)
			if !ok {
				continue
			}
			checked++
			if !strings.Contains(shown[s.ID], cmd) {
				t.Errorf("step %s ran %q, which its reviewed dry run does not show:\n%s", s.ID, cmd, shown[s.ID])
			}
		}
	}
	if checked < 10 {
		t.Errorf("only %d commands in the journal to compare with the review", checked)
	}
}

// ranCommand is the command of a journal "ran" entry ("db: (as postgres)
// psql ..."), as a dry run shows it: without the user (the dry run says
// "as postgres" its own way), a script's first line unquoted. ok is false
// for what is not a command: a write, a remove, a rename, a directory
// made, attributes set.
func ranCommand(entry string) (cmd string, ok bool) {
	_, s, _ := strings.Cut(entry, ": ")
	for _, op := range []string{"write ", "remove ", "rename ", "mkdir ", "set attributes "} {
		if strings.HasPrefix(s, op) {
			return "", false
		}
	}
	if rest, ok := strings.CutPrefix(s, "(as "); ok {
		if _, after, found := strings.Cut(rest, ") "); found {
			s = after
		}
	}
	if script, ok := strings.CutPrefix(s, "sh -c "); ok {
		if len(script) >= 2 && script[0] == '\'' && script[len(script)-1] == '\'' {
			script = strings.ReplaceAll(script[1:len(script)-1], `'\''`, "'")
		}
		s = strings.TrimSuffix(script, " ...")
	}
	return s, true
}
