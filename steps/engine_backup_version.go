package steps

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
)

// engine_backup's versions: what each option needs of engine-backup, and
// whether an archive of one version restores on the one installed.

// versionNeeds lists what the plan asks of engine-backup that only some
// versions have, each with the versions that have it: the installed
// engine's (engine-backup ships with it) is checked against them before
// anything changes.
func (b *EngineBackup) versionNeeds() []versionNeed {
	var needs []versionNeed
	if slices.Contains(b.Scope, "reportsdb") {
		needs = append(needs, versionNeed{"scope reportsdb", "", "4.4", "the Reports database was removed in 4.4"})
	}
	if b.ChangeReportsCredentials.set() {
		needs = append(needs, versionNeed{"change_reports_db_credentials", "", "4.4", "the Reports database was removed in 4.4"})
	}
	if slices.Contains(b.Scope, "keycloakdb") {
		needs = append(needs, versionNeed{"scope keycloakdb", "4.5.1", "", "Keycloak's database is backed up since 4.5.1"})
	}
	if b.ChangeKeycloakCredentials.set() {
		needs = append(needs, versionNeed{"change_keycloak_db_credentials", "4.5.1", "", "the --keycloak-db-* options came with 4.5.1"})
	}
	if b.ProvisionKeycloakDB {
		needs = append(needs, versionNeed{"provision_keycloak_db", "4.5.1", "", "--provision-keycloak-db came with 4.5.1"})
	}
	return needs
}

// versionNeed: what needs at least since (if set) and below until (if set).
type versionNeed struct{ what, since, until, why string }

// versionProblems refuses what installed's engine-backup does not have.
func (b *EngineBackup) versionProblems(installed string) []string {
	var out []string
	for _, n := range b.versionNeeds() {
		if n.since != "" && compareVersions(installed, n.since) < 0 || n.until != "" && compareVersions(installed, n.until) >= 0 {
			out = append(out, fmt.Sprintf("%s: engine-backup %s does not have it (%s)", n.what, installed, n.why))
		}
	}
	return out
}

// compareVersions orders dotted numeric versions (4.5 < 4.5.1 < 4.10).
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

var versionRE = regexp.MustCompile(`^\d+\.\d+(\.\d+)*$`)

// installedVersion is installed_version, else the installed engine's
// version as rpm tells it (engine-backup ships with the engine).
func (b *EngineBackup) installedVersion(ctx context.Context, ex executors.Executor) (string, error) {
	if b.InstalledVersion != "" {
		return b.InstalledVersion, nil
	}
	res, err := ex.Run(ctx, executors.Command{Argv: []string{"rpm", "-q", "--qf", "%{VERSION}", "ovirt-engine"}, ReadOnly: true})
	if err != nil {
		return "", fmt.Errorf("cannot tell the installed engine's version (rpm -q ovirt-engine: %w); set installed_version", err)
	}
	return strings.TrimSpace(string(res.Stdout)), nil
}

// restorableVersion applies engine-backup's rule: the archive's X.Y must be
// the installed X.Y, except that 4.3 and 4.4 archives restore on 4.5.
func restorableVersion(archived, installed string) error {
	xy := func(v string) string {
		parts := strings.SplitN(v, ".", 3)
		if len(parts) < 2 {
			return v
		}
		return parts[0] + "." + parts[1]
	}
	a, i := xy(archived), xy(installed)
	if a == i || i == "4.5" && (a == "4.3" || a == "4.4") {
		return nil
	}
	return fmt.Errorf("the archive is from engine %s but %s is installed: engine-backup restores only the same X.Y (or 4.3/4.4 onto 4.5)", archived, installed)
}
