package steps

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// fakeEngineBackup puts stand-ins for engine-backup, rpm and systemctl
// first on PATH. engine-backup records its argv and, for a passfile,
// its mode and first line; a backup writes an archive with the real
// layout (minus db/ when ENGINE_BACKUP_NO_DB is set).
func fakeEngineBackup(t *testing.T, engineActive bool, version string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	active := "exit 3"
	if engineActive {
		active = "exit 0"
	}
	scripts := map[string]string{
		"engine-backup": `#!/bin/sh
set -e
echo "$@" >> "` + dir + `/argv"
for a in "$@"; do
  case "$a" in
    --db-secured-validation) echo "FATAL: Unknown option $a" >&2; exit 1 ;;
    --db-passfile=*) f=${a#--db-passfile=}; stat -c %a "$f" > "` + dir + `/passfile-mode"; head -n1 "$f" > "` + dir + `/passfile-line" ;;
    --file=*) file=${a#--file=} ;;
    --mode=*) mode=${a#--mode=} ;;
    --log=*) log=${a#--log=} ;;
  esac
done
echo "log of $mode" > "$log"
if [ "$mode" = backup ]; then
  tmp=$(mktemp -d); mkdir -p "$tmp/files" "$tmp/db"
  echo 4.5.6 > "$tmp/version"
  [ -n "$ENGINE_BACKUP_NO_DB" ] || echo dump > "$tmp/db/engine_backup.db"
  tar -C "$tmp" -cf "$file" .
  rm -rf "$tmp"
fi
echo "Done."
`,
		"rpm":       "#!/bin/sh\nprintf '%s' '" + version + "'\n",
		"systemctl": "#!/bin/sh\n" + active + "\n",
	}
	for name, text := range scripts {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	return dir
}

func engineBackupRuntime(t *testing.T, readOnly bool) *Runtime {
	ex := executors.Executor(executors.NewLocal("engine"))
	if readOnly {
		ex = executors.ReadOnly(ex)
	}
	return &Runtime{
		StepID: "backup", Host: "engine", RunID: "run-1",
		Executor: func(ctx context.Context, host string) (executors.Executor, error) { return ex, nil },
		Secrets:  secret.Values{"db_pw": "n3w-pa$$ 'word"},
		Progress: NopProgress{},
	}
}

func TestEngineBackupBackupThenCheck(t *testing.T) {
	dir := fakeEngineBackup(t, true, "4.5.6")
	file := filepath.Join(t.TempDir(), "engine.backup")
	b := &EngineBackup{Mode: "backup", Scope: []string{"all"}, File: file}
	if ps := b.Validate(); len(ps) != 0 {
		t.Fatal(ps)
	}
	ctx := context.Background()
	if c, err := b.Check(ctx, engineBackupRuntime(t, true)); err != nil || c.Done {
		t.Fatalf("check before: %+v %v", c, err)
	}
	if _, err := applyShown(ctx, t, b, engineBackupRuntime(t, true), engineBackupRuntime(t, false)); err != nil {
		t.Fatal(err)
	}
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	want := "--mode=backup --file=" + file + ".migrun-part --log=" + file + ".log --scope=all\n"
	if string(argv) != want {
		t.Fatalf("argv %q, want %q", argv, want)
	}
	if _, err := os.Stat(hostcmd.PartPath(file)); !os.IsNotExist(err) {
		t.Fatal("the part file is left behind")
	}
	if c, err := b.Check(ctx, engineBackupRuntime(t, true)); err != nil || !c.Done {
		t.Fatalf("check after: %+v %v", c, err)
	}
	// Another run (or a dry run) never takes an old archive for its own.
	rt := engineBackupRuntime(t, true)
	rt.RunID = "run-2"
	if c, err := b.Check(ctx, rt); err != nil || c.Done || !strings.Contains(c.Reason, "earlier run") {
		t.Fatalf("check from another run: %+v %v", c, err)
	}
}

func TestEngineBackupRefusesArchiveWithoutDB(t *testing.T) {
	fakeEngineBackup(t, true, "4.5.6")
	t.Setenv("ENGINE_BACKUP_NO_DB", "1")
	file := filepath.Join(t.TempDir(), "engine.backup")
	b := &EngineBackup{Mode: "backup", File: file}
	_, err := b.Apply(context.Background(), engineBackupRuntime(t, false))
	if err == nil || !strings.Contains(err.Error(), "db/engine_backup.db") || !strings.Contains(err.Error(), "otopi-config-query") {
		t.Fatalf("err = %v, want the missing db/ named", err)
	}
	if _, err := os.Stat(file); !os.IsNotExist(err) {
		t.Fatal("an incomplete archive was put in place")
	}
}

func TestEngineBackupRestoreWithNewCredentials(t *testing.T) {
	dir := fakeEngineBackup(t, false, "4.5.2")
	file := filepath.Join(t.TempDir(), "engine.backup")
	// An archive to restore, made by the stand-in.
	if _, err := (&EngineBackup{Mode: "backup", File: file}).Apply(context.Background(), engineBackupRuntime(t, false)); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "argv"))
	b := &EngineBackup{
		Mode: "restore", Scope: []string{"files", "db"}, File: file, RestorePermissions: "false",
		ChangeDBCredentials: EngineDBCredentials{Host: "db.example.com", User: "engine", Name: "engine",
			Password: secret.Token("db_pw"), Secured: true, SecuredValidation: true},
	}
	if ps := b.Validate(); len(ps) != 0 {
		t.Fatal(ps)
	}
	acts, err := b.Describe(context.Background(), engineBackupRuntime(t, true))
	if err != nil {
		t.Fatal(err)
	}
	text := summaries(acts)
	if strings.Contains(text, "n3w-pa") || !strings.Contains(text, "<secret:db_pw>") || !strings.Contains(text, "--db-passfile=/tmp/migrun-*.pass") {
		t.Fatalf("describe:\n%s", text)
	}
	if _, err := b.Apply(context.Background(), engineBackupRuntime(t, false)); err != nil {
		t.Fatal(err)
	}
	argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
	for _, want := range []string{"--no-restore-permissions", "--change-db-credentials", "--db-host=db.example.com", "--db-port=5432", "--db-secured", "--db-sec-validation", "--db-passfile=/tmp/migrun-"} {
		if !strings.Contains(string(argv), want) {
			t.Fatalf("argv %q lacks %s", argv, want)
		}
	}
	if strings.Contains(string(argv), "n3w-pa") {
		t.Fatal("password in argv")
	}
	mode, _ := os.ReadFile(filepath.Join(dir, "passfile-mode"))
	line, _ := os.ReadFile(filepath.Join(dir, "passfile-line"))
	if strings.TrimSpace(string(mode)) != "600" || strings.TrimSpace(string(line)) != "n3w-pa$$ 'word" {
		t.Fatalf("passfile mode %q first line %q", mode, line)
	}
	pf := strings.TrimSuffix(strings.SplitN(strings.SplitN(string(argv), "--db-passfile=", 2)[1], " ", 2)[0], "\n")
	if _, err := os.Stat(pf); !os.IsNotExist(err) {
		t.Fatalf("passfile %s left behind", pf)
	}
	if c, err := b.Check(context.Background(), engineBackupRuntime(t, true)); err != nil || !c.Done {
		t.Fatalf("check after restore: %+v %v", c, err)
	}
}

func TestEngineBackupRestorePreflight(t *testing.T) {
	tests := []struct {
		name      string
		active    bool
		installed string
		want      string
	}{
		{"engine running", true, "4.5.1", "ovirt-engine is running"},
		{"other minor", false, "4.4.10", "from engine 4.5.6 but 4.4.10 is installed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeEngineBackup(t, tt.active, tt.installed)
			file := filepath.Join(t.TempDir(), "engine.backup")
			if _, err := (&EngineBackup{Mode: "backup", File: file}).Apply(context.Background(), engineBackupRuntime(t, false)); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "argv"))
			b := &EngineBackup{Mode: "restore", File: file, RestorePermissions: "true"}
			_, err := b.Apply(context.Background(), engineBackupRuntime(t, false))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "argv")); !os.IsNotExist(err) {
				t.Fatal("engine-backup ran despite the failed preflight")
			}
		})
	}
}

func TestEngineBackupValidate(t *testing.T) {
	creds := EngineDBCredentials{Host: "h", User: "u", Name: "n", Password: "p"}
	tests := []struct {
		name string
		b    EngineBackup
		want string
	}{
		{"relative file", EngineBackup{Mode: "backup", File: "x"}, "not an absolute path"},
		{"bad scope", EngineBackup{Mode: "backup", File: "/x", Scope: []string{"everything"}}, "unknown scope"},
		{"credentials on backup", EngineBackup{Mode: "backup", File: "/x", ChangeDBCredentials: creds}, "only a restore"},
		{"db restore without permissions choice", EngineBackup{Mode: "restore", File: "/x"}, "restore_permissions"},
		{"permissions with new credentials", EngineBackup{Mode: "restore", File: "/x", RestorePermissions: "true", ChangeDBCredentials: creds}, "must be false"},
		{"incomplete credentials", EngineBackup{Mode: "restore", File: "/x", RestorePermissions: "false", ChangeDBCredentials: EngineDBCredentials{Host: "h"}}, "needs host, user, name and password"},
		{"provisioned with new credentials", EngineBackup{Mode: "restore", File: "/x", RestorePermissions: "false", ProvisionDB: true, ChangeDBCredentials: creds}, "change_db_credentials: engine-backup cannot change the credentials of a database it provisions"},
		{"all provisioned, new Keycloak credentials", EngineBackup{Mode: "restore", File: "/x", RestorePermissions: "false", ProvisionAll: true, ChangeKeycloakCredentials: creds}, "change_keycloak_db_credentials: engine-backup cannot"},
		{"validation without ssl", EngineBackup{Mode: "restore", File: "/x", RestorePermissions: "false", ChangeDBCredentials: EngineDBCredentials{Host: "h", User: "u", Name: "n", Password: "p", SecuredValidation: true}}, "needs secured"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var msgs []string
			for _, p := range tt.b.Validate() {
				msgs = append(msgs, p.Field+": "+p.Message)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), tt.want) {
				t.Fatalf("problems %q, want one containing %q", msgs, tt.want)
			}
		})
	}
	// A files-only restore needs no permissions choice.
	if ps := (&EngineBackup{Mode: "restore", File: "/x", Scope: []string{"files"}}).Validate(); len(ps) != 0 {
		t.Fatalf("files-only restore: %v", ps)
	}
}

func TestRestorableVersion(t *testing.T) {
	for _, tt := range []struct {
		archived, installed string
		ok                  bool
	}{
		{"4.5.6", "4.5.1", true}, {"4.4.10", "4.5.0", true}, {"4.3.9", "4.5", true},
		{"4.5.0", "4.4.10", false}, {"4.2.8", "4.5.0", false}, {"4.4.1", "4.4.9", true},
	} {
		if err := restorableVersion(tt.archived, tt.installed); (err == nil) != tt.ok {
			t.Errorf("%s onto %s: err = %v", tt.archived, tt.installed, err)
		}
	}
}

// TestEngineBackupEveryDatabase: the DWH's, Keycloak's and the managed
// block storage's credentials, each through its own passfile; the
// provisioning and hosted-engine options; and what the installed
// engine-backup lacks refused in the check, before any change.
func TestEngineBackupEveryDatabase(t *testing.T) {
	creds := func(name string) EngineDBCredentials {
		return EngineDBCredentials{Host: "db.example.com", User: name, Name: name, Password: secret.Token(name + "_pw")}
	}
	// Provisioned databases take no new credentials (engine-backup refuses
	// both for one database): one restore of each.
	provisioned := &EngineBackup{
		Mode: "restore", File: "/var/tmp/engine.backup", RestorePermissions: "true",
		ProvisionAll: true, ProvisionKeycloakDB: true, HERemoveStorageVM: true, HERemoveHosts: true,
	}
	b := &EngineBackup{
		Mode: "restore", File: "/var/tmp/engine.backup", RestorePermissions: "false",
		ChangeDBCredentials: creds("engine"), ChangeDWHCredentials: creds("ovirt_engine_history"),
		ChangeKeycloakCredentials: creds("ovirt_engine_keycloak"), ChangeCinderlibCredentials: creds("ovirt_cinderlib"),
	}
	for _, spec := range []*EngineBackup{provisioned, b} {
		if ps := spec.Validate(); len(ps) != 0 {
			t.Fatal(ps)
		}
	}
	argv := strings.Join(provisioned.argv(nil), " ") + " " +
		strings.Join(b.argv(map[string]string{"db": "/p/db", "dwh-db": "/p/dwh", "keycloak-db": "/p/kc", "cinderlib-db": "/p/cl"}), " ")
	for _, want := range []string{"--provision-all-databases", "--provision-keycloak-db", "--he-remove-storage-vm", "--he-remove-hosts",
		"--change-keycloak-db-credentials --keycloak-db-host=db.example.com --keycloak-db-port=5432 --keycloak-db-user=ovirt_engine_keycloak --keycloak-db-passfile=/p/kc --keycloak-db-name=ovirt_engine_keycloak",
		"--change-cinderlib-db-credentials --cinderlib-db-host=db.example.com", "--cinderlib-db-passfile=/p/cl",
		"--change-dwh-db-credentials", "--dwh-db-passfile=/p/dwh", "--db-passfile=/p/db"} {
		if !strings.Contains(argv, want) {
			t.Errorf("argv lacks %q:\n%s", want, argv)
		}
	}
	if strings.Contains(argv, "_pw") {
		t.Errorf("a password reached argv: %s", argv)
	}

	tests := []struct {
		name      string
		b         EngineBackup
		installed string
		want      string // "" : accepted
	}{
		{"keycloak scope on 4.5.0", EngineBackup{Mode: "backup", File: "/x", Scope: []string{"db", "keycloakdb"}}, "4.5.0", "scope keycloakdb: engine-backup 4.5.0 does not have it"},
		{"keycloak scope on 4.5.1", EngineBackup{Mode: "backup", File: "/x", Scope: []string{"keycloakdb"}}, "4.5.1", ""},
		{"keycloak credentials on 4.4", EngineBackup{Mode: "restore", File: "/x", Scope: []string{"files"}, ChangeKeycloakCredentials: creds("kc"), RestorePermissions: "false"}, "4.4.10", "change_keycloak_db_credentials"},
		{"provision keycloak on 4.5.0", EngineBackup{Mode: "restore", File: "/x", Scope: []string{"files"}, ProvisionKeycloakDB: true}, "4.5.0", "provision_keycloak_db"},
		{"reports on 4.5", EngineBackup{Mode: "backup", File: "/x", Scope: []string{"reportsdb"}}, "4.5.6", "scope reportsdb: engine-backup 4.5.6 does not have it (the Reports database was removed in 4.4)"},
		{"reports on 4.3", EngineBackup{Mode: "backup", File: "/x", Scope: []string{"reportsdb"}}, "4.3.10", ""},
		{"he options on a backup", EngineBackup{Mode: "backup", File: "/x", HERemoveHosts: true}, "4.5.6", "apply to restores only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Known from the plan: Validate refuses.
			withVersion := tt.b
			if withVersion.Mode == "restore" {
				withVersion.InstalledVersion = tt.installed
			}
			var msgs []string
			for _, p := range withVersion.Validate() {
				msgs = append(msgs, p.Field+": "+p.Message)
			}
			got := strings.Join(msgs, "\n")
			if tt.want == "" && got != "" || !strings.Contains(got, tt.want) && withVersion.InstalledVersion != "" {
				t.Errorf("validate with installed_version %q: %q, want %q", withVersion.InstalledVersion, got, tt.want)
			}
			if strings.Contains(tt.want, "restores only") {
				return
			}
			// Asked of the host (rpm -q): the check refuses, read-only.
			fakeEngineBackup(t, false, tt.installed)
			_, err := tt.b.Check(context.Background(), engineBackupRuntime(t, true))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("check with %s installed: %v, want %q", tt.installed, err, tt.want)
			}
		})
	}
	if compareVersions("4.5", "4.5.1") >= 0 || compareVersions("4.10", "4.9.9") <= 0 || compareVersions("4.5.0", "4.5") != 0 {
		t.Error("compareVersions misorders")
	}
}

// A restore with new engine credentials but none for Keycloak, on a Manager
// whose Keycloak has a database, is refused: engine-backup would empty
// 12-setup-keycloak.conf.
func TestEngineBackupKeycloakClobbered(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "12-setup-keycloak.conf")
	ex := executors.ReadOnly(executors.NewLocal("engine"))
	ctx := context.Background()
	newEngine := EngineDBCredentials{Host: "db", User: "engine", Name: "engine", Password: secret.Token("db_pw")}
	newKeycloak := EngineDBCredentials{Host: "db", User: "ovirt_engine_keycloak", Name: "ovirt_engine_keycloak", Password: secret.Token("kc_pw")}
	for _, tt := range []struct {
		name    string
		conf    string // "" = no file
		b       EngineBackup
		refused bool
	}{
		{"keycloak configured, engine credentials alone", `KEYCLOAK_BUNDLED=True` + "\n" + `KEYCLOAK_DB_USER="ovirt_engine_keycloak"` + "\n",
			EngineBackup{Mode: "restore", ChangeDBCredentials: newEngine}, true},
		{"keycloak configured, both", `KEYCLOAK_DB_USER="ovirt_engine_keycloak"` + "\n",
			EngineBackup{Mode: "restore", ChangeDBCredentials: newEngine, ChangeKeycloakCredentials: newKeycloak}, false},
		{"no keycloak file", "", EngineBackup{Mode: "restore", ChangeDBCredentials: newEngine}, false},
		{"keycloak without a database", "KEYCLOAK_BUNDLED=False\n", EngineBackup{Mode: "restore", ChangeDBCredentials: newEngine}, false},
		{"no new credentials", `KEYCLOAK_DB_USER="ovirt_engine_keycloak"` + "\n", EngineBackup{Mode: "restore"}, false},
		{"a backup", `KEYCLOAK_DB_USER="ovirt_engine_keycloak"` + "\n", EngineBackup{Mode: "backup"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(conf)
			if tt.conf != "" {
				if err := os.WriteFile(conf, []byte(tt.conf), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			err := tt.b.keycloakClobbered(ctx, ex, conf)
			if got := err != nil; got != tt.refused {
				t.Fatalf("refused = %v (%v), want %v", got, err, tt.refused)
			}
			if err != nil && !strings.Contains(err.Error(), "give change_keycloak_db_credentials as well") {
				t.Errorf("the refusal does not say what to do: %v", err)
			}
		})
	}
}
