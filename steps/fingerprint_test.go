package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

// checkFacts runs a step's check through a recording executor and returns
// the facts it read, as a reviewed plan keeps them.
func checkFacts(t *testing.T, sp Spec, sec secret.Values) map[string]executors.Fact {
	t.Helper()
	rec := &executors.Recording{Scrub: sec.Redact}
	rt := pgStepRuntime(sec, true)
	inner := rt.Executor
	rt.Executor = func(ctx context.Context, host string) (executors.Executor, error) {
		e, err := inner(ctx, host)
		if err != nil {
			return nil, err
		}
		return rec.Wrap(e), nil
	}
	if _, err := sp.Check(context.Background(), rt); err != nil {
		t.Fatal(err)
	}
	facts := map[string]executors.Fact{}
	for _, f := range rec.Facts() {
		facts[f.Key()] = f
	}
	return facts
}

// changedFacts lists the facts whose fingerprint differs between two reads.
func changedFacts(before, after map[string]executors.Fact) []string {
	var out []string
	for k, f := range before {
		if g, ok := after[k]; !ok || g.SHA256 != f.SHA256 {
			out = append(out, f.What)
		}
	}
	return out
}

// TestPostgresFactsDetectDrift: what the PostgreSQL kinds' checks read is
// fingerprinted, so a change made behind migrun's back between the review
// and the apply is seen; a password verifier is read but never hashed.
func TestPostgresFactsDetectDrift(t *testing.T) {
	srv := startPostgres(t)
	srv.psql(t, "CREATE ROLE engine LOGIN PASSWORD 'engine-pw'")
	srv.psql(t, "CREATE DATABASE engine OWNER engine")
	sec := secret.Values{"pw": "engine-pw"}

	db := &PgDatabase{Name: "engine", Owner: "engine", Extensions: []string{"uuid-ossp"}, PgConnection: srv.pgConn()}
	before := checkFacts(t, db, sec)
	if len(before) == 0 {
		t.Fatal("pg_database's check read no facts")
	}
	if again := changedFacts(before, checkFacts(t, db, sec)); len(again) > 0 {
		t.Fatalf("nothing changed, yet facts differ: %q", again)
	}
	srv.psql(t, `CREATE EXTENSION "uuid-ossp"`, "engine")
	if changed := changedFacts(before, checkFacts(t, db, sec)); !strings.Contains(strings.Join(changed, "\n"), "postgresql database engine (") {
		t.Errorf("an extension was created behind migrun's back; facts changed: %q", changed)
	}

	role := &PgRole{Name: "engine", Password: secret.Token("pw"), Login: "true", PgConnection: srv.pgConn()}
	for _, f := range checkFacts(t, role, sec) {
		if strings.Contains(f.What, "pg_authid") && (f.SHA256 != "" || f.Unstable == "") {
			t.Errorf("the password verifier's query is fingerprinted: %+v", f)
		}
	}
}
