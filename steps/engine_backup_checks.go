package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/ovirtconf"
)

// What engine_backup checks around engine-backup itself: a backup's
// archive holds its scopes' members; a restore is refused before it
// starts where engine-backup would fail late or break the Manager; a
// failure ends with the tail of engine-backup's log.

// archiveMembers are the members a backup of the scopes must hold.
func (b *EngineBackup) archiveMembers() []string {
	m := []string{"./version"}
	if b.hasScope("files") {
		m = append(m, "./files")
	}
	if b.hasScope("db") {
		m = append(m, "./db/engine_backup.db")
	}
	return m
}

// verifyArchive lists the archive and checks the scopes' members are in.
func (b *EngineBackup) verifyArchive(ctx context.Context, ex executors.Executor, file string) error {
	res, err := ex.Run(ctx, executors.Command{Argv: []string{"tar", "-tf", file}, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("is not a readable archive: %w", err)
	}
	listing := "\n" + string(res.Stdout)
	for _, m := range b.archiveMembers() {
		name := strings.TrimPrefix(m, "./")
		if !strings.Contains(listing, "\n"+m) && !strings.Contains(listing, "\n"+name) {
			return fmt.Errorf("the archive lacks %s (engine-backup leaves the database out when otopi-config-query is missing)", m)
		}
	}
	return nil
}

// keycloakConf is where engine-setup 4.5 configures Keycloak's database.
const keycloakConf = "/etc/ovirt-engine/engine.conf.d/12-setup-keycloak.conf"

// keycloakClobbered refuses a restore with change_db_credentials but not
// change_keycloak_db_credentials on a Manager whose Keycloak has a
// database: engine-backup 4.5 then rewrites 12-setup-keycloak.conf with the
// Keycloak credentials it was given, none, and the Manager's logins break
// (read in engine-backup.sh.in: changeKeycloakDBConf runs on either option).
func (b *EngineBackup) keycloakClobbered(ctx context.Context, ex executors.Executor, conf string) error {
	if b.Mode != "restore" || !b.ChangeDBCredentials.set() || b.ChangeKeycloakCredentials.set() {
		return nil
	}
	data, err := ex.ReadFile(ctx, conf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	f, err := ovirtconf.Parse(string(data))
	if err != nil {
		return fmt.Errorf("%s:%s: %w", ex.Name(), conf, err)
	}
	if user, _ := f.Get("KEYCLOAK_DB_USER"); user == "" {
		return nil
	}
	return fmt.Errorf("%s: Keycloak's database is configured in %s: with change_db_credentials alone engine-backup rewrites that file with empty credentials and the Manager's logins break; give change_keycloak_db_credentials as well (its owner's host, user, password and database)", ex.Name(), conf)
}

// preflight checks what engine-backup would otherwise find late: the
// archive's version against the installed engine, and a stopped engine.
func (b *EngineBackup) preflight(ctx context.Context, ex executors.Executor) error {
	res, err := ex.Run(ctx, executors.Command{Argv: []string{"tar", "-xOf", b.File, "./version"}, ReadOnly: true})
	if err != nil {
		return fmt.Errorf("read the version in %s: %w", b.File, err)
	}
	archived := strings.TrimSpace(string(res.Stdout))
	installed, err := b.installedVersion(ctx, ex)
	if err != nil {
		return err
	}
	if err := restorableVersion(archived, installed); err != nil {
		return err
	}
	if _, err := ex.Run(ctx, executors.Command{Argv: []string{"systemctl", "is-active", "--quiet", "ovirt-engine"}, ReadOnly: true}); err == nil {
		return errors.New("ovirt-engine is running: stop it before a restore (a service step with state: stopped)")
	}
	return nil
}

// logHint adds the end of engine-backup's log to a failure, where it says
// why; and explains the known late failure of --change-db-credentials.
func (b *EngineBackup) logHint(ctx context.Context, ex executors.Executor) string {
	data, err := ex.ReadFile(ctx, b.logFile())
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	hint := "\nlast lines of " + b.logFile() + ":\n  " + strings.Join(lines, "\n  ")
	if b.ChangeDBCredentials.set() {
		hint += "\nnote: with change_db_credentials, engine-backup also rewrites the DWH, Managed Block and Keycloak configs; when one is missing it fails at the very end, after the database and the engine's config were already changed"
	}
	return hint
}
