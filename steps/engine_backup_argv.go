package steps

import (
	"slices"
	"strconv"

	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// engine_backup's command line: the scopes asked for and the engine-backup
// arguments they and the credentials give.

// engineBackupScopes are every version's; versionNeeds says which a
// version lacks.
var engineBackupScopes = []string{"all", "files", "db", "dwhdb", "reportsdb", "cinderlibdb", "keycloakdb", "grafanadb"}

// credentialSets pairs each credentials block with its option prefix.
func (b *EngineBackup) credentialSets() []struct {
	key, prefix string
	c           EngineDBCredentials
} {
	return []struct {
		key, prefix string
		c           EngineDBCredentials
	}{
		{"change_db_credentials", "db", b.ChangeDBCredentials},
		{"change_dwh_db_credentials", "dwh-db", b.ChangeDWHCredentials},
		{"change_reports_db_credentials", "reports-db", b.ChangeReportsCredentials},
		{"change_keycloak_db_credentials", "keycloak-db", b.ChangeKeycloakCredentials},
		{"change_cinderlib_db_credentials", "cinderlib-db", b.ChangeCinderlibCredentials},
	}
}

func (b *EngineBackup) scopes() []string {
	if len(b.Scope) == 0 {
		return []string{"all"}
	}
	return b.Scope
}

func (b *EngineBackup) hasScope(names ...string) bool {
	for _, s := range b.scopes() {
		if s == "all" || slices.Contains(names, s) {
			return true
		}
	}
	return false
}

// argv is the engine-backup command line; passfiles maps each credentials
// prefix to its passfile path (placeholders in dry runs).
func (b *EngineBackup) argv(passfiles map[string]string) []string {
	file := b.File
	if b.Mode == "backup" {
		file = hostcmd.PartPath(b.File) // renamed into place once verified
	}
	argv := []string{"engine-backup", "--mode=" + b.Mode, "--file=" + file, "--log=" + b.logFile()}
	if b.Mode != "verify" {
		for _, s := range b.scopes() {
			argv = append(argv, "--scope="+s)
		}
	}
	if b.Mode != "restore" {
		return argv
	}
	for _, f := range []struct {
		on   bool
		flag string
	}{
		{b.ProvisionDB, "--provision-db"},
		{b.ProvisionDWHDB, "--provision-dwh-db"},
		{b.ProvisionKeycloakDB, "--provision-keycloak-db"},
		{b.ProvisionAll, "--provision-all-databases"},
		{b.HERemoveStorageVM, "--he-remove-storage-vm"},
		{b.HERemoveHosts, "--he-remove-hosts"},
	} {
		if f.on {
			argv = append(argv, f.flag)
		}
	}
	switch b.RestorePermissions {
	case "true":
		argv = append(argv, "--restore-permissions")
	case "false":
		argv = append(argv, "--no-restore-permissions")
	}
	for _, cs := range b.credentialSets() {
		c := cs.c
		if !c.set() {
			continue
		}
		p := "--" + cs.prefix
		port := c.Port
		if port == 0 {
			port = 5432
		}
		argv = append(argv, "--change-"+cs.prefix+"-credentials",
			p+"-host="+c.Host, p+"-port="+strconv.Itoa(port), p+"-user="+c.User,
			p+"-passfile="+passfiles[cs.prefix], p+"-name="+c.Name)
		if c.Secured {
			argv = append(argv, p+"-secured")
		}
		if c.SecuredValidation {
			// Not --*-secured-validation: the help text says so, but the
			// parser only knows this spelling.
			argv = append(argv, p+"-sec-validation")
		}
	}
	return argv
}
