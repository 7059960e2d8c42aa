//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/migrun/migrun/internal/pgtest"
)

// asWorkstation is a command prefix that runs migrun in a UTS namespace
// of its own named ws: another machine, as far as the journal's "by whom,
// from where" can tell. exec keeps the pid: a signal reaches migrun.
func asWorkstation(ws string) []string {
	return []string{"unshare", "--uts", "--", "sh", "-c", `hostname "$0" && exec "$@"`, ws}
}

// TestStateDatabaseResumeFromAnotherWorkstation: workstation A applies the
// headline plan with its journal in a state database and is killed with
// SIGKILL in the downtime, right after the engine stopped; its files are
// gone. Workstation B, another client of the same database, sees where A's
// journal ends and who ran it, takes the lock A's dead session left
// without any unlock, resumes, and the migration ends as an undisturbed
// run ends.
func TestStateDatabaseResumeFromAnotherWorkstation(t *testing.T) {
	resetHosts(t)
	enginePassword(t)
	srv := pgtest.Start(t)
	// A URL, as users write it; the other tests use keyword/value strings.
	srv.OwnDatabase(t, "migrun_state")
	state := fmt.Sprintf("postgresql:///migrun_state?host=%s&port=%d&user=root", srv.SocketDir, srv.Port)
	vars := append(append([]string{}, engineDBOnly...), headlineVars()...)

	// Workstation A: its own directory, which dies with it.
	cmd, events, stderr := startMigrunAs(t, asWorkstation("ws-a"), append([]string{"apply", "--yes", "--state", state}, vars...)...)
	var before string
	killed := false
	for e := range events {
		if e["type"] == "step_end" && e["step"] == "stop-engine" && !killed {
			cmd.Process.Signal(syscall.SIGKILL)
			killed = true
			before = tableCounts(t, "engine") // the engine is stopped: the source is final
		}
		if e["type"] == "run_end" {
			t.Fatalf("A's run ended before the engine stopped: %v\n%s", e, stderr)
		}
	}
	cmd.Wait()
	if !killed {
		t.Fatalf("A never stopped the engine:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(repoRoot, "plans", ".migrun")); err == nil {
		t.Fatal("A wrote a state directory beside the plan despite --state")
	}

	// Workstation B.
	known := env["MIGRUN_E2E_KNOWN_HOSTS"]
	status := runMigrunAs(t, asWorkstation("ws-b"), known, headlinePlan(), append([]string{"status", "--state", state}, vars...)...)
	if status.code != 0 || !strings.Contains(status.out, "running (run") || !strings.Contains(status.out, "@ws-a") ||
		!strings.Contains(status.out, "stop-engine") || !strings.Contains(status.out, "--resume") ||
		!strings.Contains(status.out, "Lock: free: the apply that wrote this journal is gone") {
		t.Fatalf("status from B does not show A's run where it ended (running, stop-engine done, by ws-a, its lock free, resume advised):\n%s", status.out)
	}
	// A died in the downtime: the engine stopped, not started again.
	for _, line := range strings.Split(status.out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && (f[0] == "stop-engine" && f[2] != "done" || f[0] == "start-engine" && f[2] != "pending") {
			t.Fatalf("A was not killed in the downtime: %q\n%s", line, status.out)
		}
	}
	resumed := runMigrunAs(t, asWorkstation("ws-b"), known, headlinePlan(), append([]string{"apply", "--yes", "--resume", "--state", state}, vars...)...)
	if resumed.code != 0 {
		t.Fatalf("B's resume: exit %d", resumed.code)
	}
	history := srv.Psql(t, `SELECT string_agg(concat_ws(' ', h->>'mode', h->>'status', h->>'workstation'), ', ' ORDER BY ord)
FROM migrun.journals, jsonb_array_elements(snapshot->'history') WITH ORDINALITY AS x(h, ord)`, "migrun_state")
	if history != "fresh running ws-a, resume completed ws-b" {
		t.Errorf("history = %q, want A's fresh run (left running) and B's completed resume", history)
	}
	// The journal, copied to files, is that of an undisturbed run.
	copied := filepath.Join(t.TempDir(), "copied")
	if out, err := exec.Command(migrun, "state", "migrate", "--from", state, "--to", copied).CombinedOutput(); err != nil {
		t.Fatalf("state migrate: %v\n%s", err, out)
	}
	assertMigrated(t, copied, before)
}
