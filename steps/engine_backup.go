package steps

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var engineBackupKind = Kind{
	Name:      "engine_backup",
	Summary:   "back up, restore or verify an oVirt engine with engine-backup",
	NeedsHost: true,
	New:       func() Spec { return new(EngineBackup) },
}

var _ Spec = (*EngineBackup)(nil)

// EngineBackup runs oVirt's engine-backup on the Manager host.
//
// What the guide leaves out and this kind gets right (checked against the
// oVirt 4.5 script):
//   - engine-backup re-executes itself under `env -i`, so passwords go in
//     --*-passfile files (0600, removed after), never the environment or
//     --*-password=;
//   - its help says --db-secured-validation but its parser only accepts
//     --db-sec-validation;
//   - a restore of a custom-format dump dies after restoring the files
//     unless told --restore-permissions or --no-restore-permissions, and
//     --restore-permissions fails with new credentials;
//   - a restore needs the same X.Y as the installed engine (4.3 and 4.4
//     archives restore on 4.5), a stopped engine and an empty database;
//   - a backup silently leaves the database out when otopi-config-query is
//     missing, so the archive is checked for db/ before it counts.
type EngineBackup struct {
	Mode                string   `yaml:"mode" required:"true" enum:"backup|restore|verify" doc:"what engine-backup does"`
	Scope               []string `yaml:"scope" doc:"what to back up or restore: all, files, db, dwhdb, reportsdb, cinderlibdb, keycloakdb, grafanadb (default all)"`
	File                string   `yaml:"file" required:"true" doc:"absolute path of the archive on the host"`
	Log                 string   `yaml:"log" doc:"absolute path of engine-backup's log (default FILE.log)"`
	ProvisionDB         bool     `yaml:"provision_db" doc:"restore: create the engine database and its user on a local PostgreSQL (--provision-db)"`
	ProvisionDWHDB      bool     `yaml:"provision_dwh_db" doc:"restore: the same for the DWH database (--provision-dwh-db)"`
	ProvisionKeycloakDB bool     `yaml:"provision_keycloak_db" doc:"restore: the same for Keycloak's database (--provision-keycloak-db; engine 4.5.1 and later)"`
	ProvisionAll        bool     `yaml:"provision_all_databases" doc:"restore: provision every database the archive holds (--provision-all-databases)"`
	HERemoveStorageVM   bool     `yaml:"he_remove_storage_vm" doc:"restore of a hosted engine: remove the hosted-engine storage domain and the engine VM from the restored database (--he-remove-storage-vm)"`
	HERemoveHosts       bool     `yaml:"he_remove_hosts" doc:"restore of a hosted engine: remove the hosted-engine hosts from the restored database (--he-remove-hosts; redeploy them at once)"`
	RestorePermissions  string   `yaml:"restore_permissions" enum:"true|false" doc:"restore of a database: restore its grants (--restore-permissions) or not (--no-restore-permissions); required then, and false with changed credentials"`
	InstalledVersion    string   `yaml:"installed_version" doc:"restore: the installed engine's version (X.Y[.Z]); default: asked from rpm -q ovirt-engine on the host"`

	ChangeDBCredentials        EngineDBCredentials `yaml:"change_db_credentials" doc:"restore the engine database with other credentials than the backup's"`
	ChangeDWHCredentials       EngineDBCredentials `yaml:"change_dwh_db_credentials" doc:"the same for the DWH database"`
	ChangeReportsCredentials   EngineDBCredentials `yaml:"change_reports_db_credentials" doc:"the same for the Reports database (oVirt 3.x; engine-backup 4.4 and later refuse it)"`
	ChangeKeycloakCredentials  EngineDBCredentials `yaml:"change_keycloak_db_credentials" doc:"the same for Keycloak's database (engine 4.5.1 and later; note engine-backup then rewrites 12-setup-keycloak.conf with the database keys only, until engine-setup runs)"`
	ChangeCinderlibCredentials EngineDBCredentials `yaml:"change_cinderlib_db_credentials" doc:"the same for the managed block storage database (ovirt_cinderlib)"`
}

// EngineDBCredentials are the --change-*-db-credentials options. Setting
// host turns them on.
type EngineDBCredentials struct {
	Host              string `yaml:"host" doc:"database host (required when changing credentials)"`
	Port              int    `yaml:"port" default:"5432" doc:"database port"`
	User              string `yaml:"user" doc:"database user"`
	Password          string `yaml:"password" secret:"allowed" doc:"the user's password; passed in a 0600 passfile"`
	Name              string `yaml:"name" doc:"database name"`
	Secured           bool   `yaml:"secured" doc:"connect with SSL (--*-db-secured)"`
	SecuredValidation bool   `yaml:"secured_validation" doc:"validate the server's certificate (--*-db-sec-validation)"`
}

func (c EngineDBCredentials) set() bool { return c.Host != "" }

func (b *EngineBackup) logFile() string {
	if b.Log != "" {
		return b.Log
	}
	return b.File + ".log"
}

// Validate refuses the combinations engine-backup would reject late.
func (b *EngineBackup) Validate() []Problem {
	var ps []Problem
	if b.File != "" && !path.IsAbs(b.File) {
		ps = append(ps, Problem{"file", fmt.Sprintf("%q is not an absolute path", b.File)})
	}
	if b.Log != "" && !path.IsAbs(b.Log) {
		ps = append(ps, Problem{"log", fmt.Sprintf("%q is not an absolute path", b.Log)})
	}
	for _, s := range b.Scope {
		if !slices.Contains(engineBackupScopes, s) {
			ps = append(ps, Problem{"scope", fmt.Sprintf("unknown scope %q (want one of %s)", s, strings.Join(engineBackupScopes, ", "))})
		}
	}
	restore := b.Mode == "restore"
	for _, cs := range b.credentialSets() {
		c := cs.c
		given := c.set() || c.User != "" || c.Password != "" || c.Name != "" || c.Port != 0 || c.Secured || c.SecuredValidation
		switch {
		case given && !restore:
			ps = append(ps, Problem{cs.key, "only a restore changes database credentials"})
		case given && (c.Host == "" || c.User == "" || c.Name == "" || c.Password == ""):
			ps = append(ps, Problem{cs.key, "needs host, user, name and password"})
		case c.Port < 0 || c.Port > 65535:
			ps = append(ps, Problem{cs.key, fmt.Sprintf("port %d is out of range", c.Port)})
		case c.SecuredValidation && !c.Secured:
			ps = append(ps, Problem{cs.key, "secured_validation needs secured: true"})
		}
	}
	if !restore && (b.ProvisionDB || b.ProvisionDWHDB || b.ProvisionKeycloakDB || b.ProvisionAll || b.HERemoveStorageVM || b.HERemoveHosts || b.RestorePermissions != "" || b.InstalledVersion != "") {
		ps = append(ps, Problem{"mode", "provision_*, he_remove_*, restore_permissions and installed_version apply to restores only"})
	}
	if b.InstalledVersion != "" && versionRE.MatchString(b.InstalledVersion) {
		for _, p := range b.versionProblems(b.InstalledVersion) {
			ps = append(ps, Problem{"installed_version", p})
		}
	}
	if restore && b.hasScope("db", "dwhdb", "reportsdb", "cinderlibdb", "keycloakdb", "grafanadb") && b.RestorePermissions == "" {
		ps = append(ps, Problem{"restore_permissions", "a restore of a database needs restore_permissions: true or false (engine-backup dies after restoring the files without one)"})
	}
	if b.RestorePermissions == "true" && (b.ChangeDBCredentials.set() || b.ChangeDWHCredentials.set() || b.ChangeKeycloakCredentials.set() || b.ChangeCinderlibCredentials.set()) {
		ps = append(ps, Problem{"restore_permissions", "must be false with changed credentials: the new user is not a member of the backup's roles (\"must be member of role engine\")"})
	}
	// engine-backup dies on a database both provisioned and given new
	// credentials: provisioning creates it with the backup's.
	for _, pc := range []struct {
		provision bool
		key       string
		creds     EngineDBCredentials
	}{
		{b.ProvisionDB || b.ProvisionAll, "change_db_credentials", b.ChangeDBCredentials},
		{b.ProvisionDWHDB || b.ProvisionAll, "change_dwh_db_credentials", b.ChangeDWHCredentials},
		{b.ProvisionKeycloakDB || b.ProvisionAll, "change_keycloak_db_credentials", b.ChangeKeycloakCredentials},
		{b.ProvisionAll, "change_cinderlib_db_credentials", b.ChangeCinderlibCredentials},
	} {
		if pc.provision && pc.creds.set() {
			ps = append(ps, Problem{pc.key, "engine-backup cannot change the credentials of a database it provisions (\"Cannot change credentials if provisioning a database\"): provision it, or create it and give its credentials"})
		}
	}
	if b.InstalledVersion != "" && !versionRE.MatchString(b.InstalledVersion) {
		ps = append(ps, Problem{"installed_version", fmt.Sprintf("%q is not a version like 4.5 or 4.5.6", b.InstalledVersion)})
	}
	return ps
}

func (b *EngineBackup) Hosts(stepHost string) []string { return []string{stepHost} }

// backupRunMarker records which run made the archive (Runtime.RunID).
func backupRunMarker(file string) string { return file + ".migrun-run" }

// restoredMarker records which archive a restore completed from.
func restoredMarker(file string) string { return file + ".migrun-restored" }

func (b *EngineBackup) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	if b.Mode != "verify" && b.InstalledVersion == "" && len(b.versionNeeds()) > 0 {
		// What the installed engine-backup lacks refuses now, before any
		// step of the plan changed anything.
		installed, err := b.installedVersion(ctx, ex)
		if err != nil {
			return Check{}, err
		}
		if ps := b.versionProblems(installed); len(ps) > 0 {
			return Check{}, fmt.Errorf("%s: %s", ex.Name(), strings.Join(ps, "; "))
		}
	}
	if err := b.keycloakClobbered(ctx, ex, keycloakConf); err != nil {
		return Check{}, err
	}
	switch b.Mode {
	case "verify":
		return Check{Reason: "a verification always runs"}, nil
	case "backup":
		if _, err := ex.Stat(ctx, b.File); errors.Is(err, fs.ErrNotExist) {
			return Check{Reason: "no archive at " + b.File + " yet"}, nil
		} else if err != nil {
			return Check{}, err
		}
		// Only this run's archive counts: one left by an earlier run is a
		// backup of an older state.
		if run, err := ex.ReadFile(ctx, backupRunMarker(b.File)); err != nil || rt.RunID == "" || strings.TrimSpace(string(run)) != rt.RunID {
			return Check{Reason: "the archive at " + b.File + " is from an earlier run; a new backup replaces it"}, nil
		}
		if err := b.verifyArchive(ctx, ex, b.File); err != nil {
			return Check{}, fmt.Errorf("%s:%s exists but %w; move it aside or name another file", ex.Name(), b.File, err)
		}
		return Check{Done: true, Reason: "archive " + b.File + " made by this run holds " + strings.Join(b.scopes(), ", ")}, nil
	}
	// restore
	if _, err := ex.Stat(ctx, b.File); errors.Is(err, fs.ErrNotExist) {
		return Check{Unknown: true, Reason: "archive " + b.File + " does not exist yet"}, nil
	} else if err != nil {
		return Check{}, err
	}
	marker, err := ex.ReadFile(ctx, restoredMarker(b.File))
	if errors.Is(err, fs.ErrNotExist) {
		return Check{Reason: "not restored from " + b.File + " yet"}, nil
	} else if err != nil {
		return Check{}, err
	}
	sum, err := ex.Checksum(ctx, b.File)
	if err != nil {
		return Check{}, err
	}
	if strings.TrimSpace(string(marker)) == sum {
		return Check{Done: true, Reason: "restored from this archive (sha256 " + sum[:12] + ") by an earlier run"}, nil
	}
	return Check{Reason: "the archive changed since the last restore from " + b.File}, nil
}

func (b *EngineBackup) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	passfiles := map[string]string{}
	var notes []string
	for _, cs := range b.credentialSets() {
		if cs.c.set() {
			passfiles[cs.prefix] = secretFilePattern + ".pass"
			notes = append(notes, fmt.Sprintf("--%s-passfile is a 0600 file holding %s, removed after", cs.prefix, secret.Mask(cs.c.Password)))
		}
	}
	summary := "run on " + rt.Host + ": " + executors.QuoteArgv(b.argv(passfiles))
	acts := []Action{{Host: rt.Host, Summary: summary}}
	for _, n := range notes {
		acts = append(acts, Action{Host: rt.Host, Summary: "  " + n})
	}
	switch b.Mode {
	case "backup":
		acts = append(acts, Action{Host: rt.Host, Summary: "then check the archive holds " + strings.Join(b.archiveMembers(), ", ") + " and rename it to " + b.File})
	case "restore":
		acts = append([]Action{{Host: rt.Host, Summary: "first: the archive's version must match the installed engine's X.Y, and ovirt-engine must be stopped"}}, acts...)
	}
	return acts, nil
}

func (b *EngineBackup) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	if b.Mode == "restore" {
		if err := b.preflight(ctx, ex); err != nil {
			return Outcome{}, fmt.Errorf("%s: %w", ex.Name(), err)
		}
	}
	passfiles := map[string]string{}
	defer func() {
		for _, f := range passfiles {
			removeSecretFile(ctx, ex, f)
		}
	}()
	for _, cs := range b.credentialSets() {
		if !cs.c.set() {
			continue
		}
		pw, err := rt.Secrets.Reveal(cs.c.Password)
		if err != nil {
			return Outcome{}, fmt.Errorf("%s: %w", cs.key, err)
		}
		// engine-backup reads the first line of the passfile.
		f, err := writeSecretFile(ctx, ex, pw+"\n", "", ".pass")
		if err != nil {
			return Outcome{}, fmt.Errorf("%s passfile: %w", cs.key, err)
		}
		passfiles[cs.prefix] = f
	}

	out := rt.Output
	if out == nil {
		out = io.Discard
	}
	red := rt.Secrets.Writer(out)
	tail := executors.NewTail(outputTail)
	w := io.MultiWriter(red, tail)
	argv := b.argv(passfiles)
	_, runErr := ex.Run(ctx, executors.Command{Argv: argv, Stdout: w, Stderr: w})
	red.Flush()
	// A verification only reads the archive.
	o := Outcome{Changed: b.Mode != "verify", Output: rt.Secrets.Redact(tail.String())}
	if runErr != nil {
		return o, fmt.Errorf("%s: engine-backup --mode=%s: %w%s", ex.Name(), b.Mode, runErr, b.logHint(ctx, ex))
	}
	switch b.Mode {
	case "backup":
		part := hostcmd.PartPath(b.File)
		if err := b.verifyArchive(ctx, ex, part); err != nil {
			return o, fmt.Errorf("%s: the new archive %s %w", ex.Name(), part, err)
		}
		if err := ex.Rename(ctx, part, b.File); err != nil {
			return o, err
		}
		if err := ex.WriteFile(ctx, backupRunMarker(b.File), []byte(rt.RunID+"\n"), executors.FileAttrs{Mode: 0o600}); err != nil {
			return o, err
		}
		o.Output += fmt.Sprintf("\narchive %s holds %s; log %s", b.File, strings.Join(b.archiveMembers(), ", "), b.logFile())
	case "restore":
		sum, err := ex.Checksum(ctx, b.File)
		if err != nil {
			return o, err
		}
		if err := ex.WriteFile(ctx, restoredMarker(b.File), []byte(sum+"\n"), executors.FileAttrs{Mode: 0o600}); err != nil {
			return o, err
		}
	}
	return o, nil
}
