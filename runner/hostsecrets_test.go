package runner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/plan"
)

// TestHostSecrets: a secret kept in a config file on a host is read once
// connected, only when a step about to run uses it, and is redacted like
// any other; one a running step needs and cannot be read stops the apply
// before any change.
func TestHostSecrets(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.w.files["a:/etc/ovirt.conf"] = "# engine-setup\nDWH_PW=\"s3cret-dwh\"\n"
	f.plan.Secrets = map[string]plan.SecretSource{
		"dwh": {Host: "a", File: "/etc/ovirt.conf", Key: "DWH_PW"},
		"kc":  {Host: "a", File: "/etc/keycloak.conf", Key: "KC_PW"},
	}
	f.spec(0).Output = "password " + secret.Token("dwh")
	f.spec(1).Output = "password " + secret.Token("kc")
	f.plan.Steps[1].When = "no" // the Manager has no Keycloak
	if _, err := f.apply(Options{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(JournalPath(filepath.Join(f.dir, "state"), f.plan.Name))
	if strings.Contains(string(data), "s3cret-dwh") || !strings.Contains(string(data), "password "+secret.Masked) {
		t.Fatalf("the host secret leaked or was not used:\n%s", data)
	}

	g := newFixture(t, "one", "two")
	g.plan.Secrets = f.plan.Secrets
	g.spec(1).Output = "password " + secret.Token("kc")
	_, err := g.apply(Options{})
	if err == nil || !strings.Contains(err.Error(), "secret kc: read a:/etc/keycloak.conf") || !strings.Contains(err.Error(), "nothing was changed") {
		t.Fatalf("a needed host secret that is missing: %v", err)
	}
	if g.w.log() != "" {
		t.Fatalf("applied %q", g.w.log())
	}
	g.w.files["a:/etc/keycloak.conf"] = "OTHER=1\n"
	if _, err := g.apply(Options{}); err == nil || !strings.Contains(err.Error(), "a:/etc/keycloak.conf does not set KC_PW") {
		t.Fatalf("a key the file does not set: %v", err)
	}
}
