package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/pgtest"
)

// TestCLIDatabaseState applies a plan with its journal in a state
// database, reads it back with status, copies it to a state directory and
// back with state migrate, and finds the secret in neither.
func TestCLIDatabaseState(t *testing.T) {
	srv := pgtest.Start(t)
	conn := srv.OwnDatabase(t, "state")
	planFile, dir := writePlan(t, localPlan)
	vars := []string{"--var", "dir=" + dir}

	// Reading writes nothing, not even migrun's tables.
	for _, cmd := range []string{"status", "plan"} {
		code, out, errOut := cli(t, secretEnv, append([]string{cmd, "--state", conn, planFile}, vars...)...)
		if code != 0 {
			t.Fatalf("%s --state on a new database: exit %d\n%s\n%s", cmd, code, out, errOut)
		}
	}
	if got := srv.Psql(t, "SELECT to_regnamespace('migrun') IS NULL", "state"); got != "t" {
		t.Fatal("status or plan created migrun's schema in the state database")
	}

	code, out, errOut := cli(t, secretEnv, append([]string{"apply", "--yes", "--state", conn, planFile}, vars...)...)
	if code != 0 {
		t.Fatalf("apply --state: exit %d\n%s\n%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, ".migrun")); !os.IsNotExist(err) {
		t.Fatalf("apply --state wrote a state directory: %v", err)
	}
	// $MIGRUN_STATE stands for --state.
	withState := func(k string) string {
		if k == stateEnv {
			return conn
		}
		return secretEnv(k)
	}
	code, out, _ = cli(t, withState, append([]string{"status", planFile}, vars...)...)
	if code != 0 || !strings.Contains(out, "completed") || !strings.Contains(out, "copy-it") {
		t.Fatalf("status with $MIGRUN_STATE: %d\n%s", code, out)
	}
	code, _, errOut = cli(t, withState, append([]string{"apply", "--yes", planFile}, vars...)...)
	if code != 3 || !strings.Contains(errOut, "already completed") {
		t.Fatalf("second apply against the database: exit %d, %q", code, errOut)
	}
	// So does the workstation's config file.
	cfgHome := t.TempDir()
	os.MkdirAll(filepath.Join(cfgHome, "migrun"), 0o755)
	os.WriteFile(filepath.Join(cfgHome, "migrun", "config.yaml"), []byte("state:\n  postgres: \""+conn+"\"\n"), 0o644)
	withConfig := func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return cfgHome
		}
		return secretEnv(k)
	}
	code, out, _ = cli(t, withConfig, append([]string{"status", planFile}, vars...)...)
	if code != 0 || !strings.Contains(out, "completed") {
		t.Fatalf("status with the config file's state: %d\n%s", code, out)
	}
	if got := srv.Psql(t, "SELECT count(*) FROM migrun.journals WHERE snapshot::text LIKE '%very-secret-value%'", "state"); got != "0" {
		t.Fatal("the state database holds the secret")
	}

	// To files and back.
	stateDir := filepath.Join(t.TempDir(), "copied")
	code, out, errOut = cli(t, nil, "state", "migrate", "--from", conn, "--to", stateDir)
	if code != 0 || !strings.Contains(out, "cli-test: copied") {
		t.Fatalf("state migrate to files: %d\n%s\n%s", code, out, errOut)
	}
	code, out, _ = cli(t, secretEnv, append([]string{"status", "--state-dir", stateDir, planFile}, vars...)...)
	if code != 0 || !strings.Contains(out, "completed") {
		t.Fatalf("status of the copied journal: %d\n%s", code, out)
	}
	code, out, _ = cli(t, nil, "state", "migrate", "--from", stateDir, "--to", conn, "cli-test")
	if code != 0 || !strings.Contains(out, "already holds this journal") {
		t.Fatalf("copying the same journal back: %d\n%s", code, out)
	}
	// Another journal of the same plan is not overwritten.
	other := filepath.Join(t.TempDir(), "other")
	otherPlan, otherDir := writePlan(t, localPlan)
	if code, out, errOut := cli(t, secretEnv, "apply", "--yes", "--state-dir", other, "--var", "dir="+otherDir, otherPlan); code != 0 {
		t.Fatalf("apply into another state dir: %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = cli(t, nil, "state", "migrate", "--from", other, "--to", conn)
	if code != 3 || !strings.Contains(errOut, "another journal of this plan") {
		t.Fatalf("migrate over another journal: exit %d, %q", code, errOut)
	}
}

func TestCLIStateUsage(t *testing.T) {
	planFile, _ := writePlan(t, localPlan)
	badConfig := t.TempDir()
	os.MkdirAll(filepath.Join(badConfig, "migrun"), 0o755)
	os.WriteFile(filepath.Join(badConfig, "migrun", "config.yaml"), []byte("state:\n  postgress: x\n"), 0o644)
	code, _, errOut := cli(t, func(k string) string {
		if k == "XDG_CONFIG_HOME" {
			return badConfig
		}
		return ""
	}, "status", planFile)
	if code != exitInvalid || !strings.Contains(errOut, "migrun/config.yaml: line 2: field postgress not found") {
		t.Errorf("a config file with an unknown key: exit %d, %q", code, errOut)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"status", "--state", "postgres://db/state", "--state-dir", "x", planFile}, "give one"},
		{[]string{"status", "--state", "postgres://migrun:pw@db/state", planFile}, "PGPASSWORD"},
		{[]string{"status", "--state", "/var/lib/migrun", planFile}, "use --state-dir"},
		{[]string{"state", "copy"}, "the one subcommand is migrate"},
		{[]string{"state", "migrate", "--from", "a"}, "give both --from and --to"},
	} {
		code, _, errOut := cli(t, nil, tt.args...)
		if code != exitInvalid || !strings.Contains(errOut, tt.want) || strings.Contains(errOut, ":pw@") {
			t.Errorf("%v: exit %d, %q; want a refusal with %q", tt.args, code, errOut, tt.want)
		}
	}
}
