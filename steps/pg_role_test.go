package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
)

// conn is the PgConnection that reaches the test cluster.
func (p *testPG) pgConn() PgConnection {
	return PgConnection{SocketDir: p.SocketDir, Port: p.Port}
}

// pgRuntime is a Runtime whose host "db" is this machine; readOnly wraps
// it as a dry run does.
func pgStepRuntime(secrets secret.Values, readOnly bool) *Runtime {
	var ex executors.Executor = executors.NewLocal("db")
	if readOnly {
		ex = executors.ReadOnly(ex)
	}
	rt := testRuntime(hosts{"db": ex}, secrets, nil)
	rt.DryRun = readOnly
	return rt
}

func TestScramVerifier(t *testing.T) {
	// Computed independently (Python hashlib.pbkdf2_hmac and hmac, RFC
	// 5802) for password "engine-pw"; the server test below checks
	// verifiers PostgreSQL itself made.
	const verifier = "SCRAM-SHA-256$4096:0spcVgIh/ehwEmkivyAE+A==$oidAqh49+FMp2d5Q05wikUdsoyzagRDPU9OkAQ6Gm+A=:G82p4L8q7KxAB/qNChowjN46Cbb76dxzit6zDy3WC08="
	ok, err := pgPasswordMatches(verifier, "engine", "engine-pw")
	if err != nil || !ok {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, _ := pgPasswordMatches(verifier, "engine", "wrong"); ok {
		t.Fatal("wrong password matched")
	}
	if _, err := pgPasswordMatches("SCRAM-SHA-256$x", "engine", "p"); err == nil {
		t.Fatal("malformed verifier accepted")
	}
	// md5 verifiers are md5(password || role name).
	if ok, _ := pgPasswordMatches("md5"+"4c9a6c6b1fc4d5a5ebde2c1c4d1e6ca1", "engine", "x"); ok {
		t.Fatal("bogus md5 matched")
	}
	if ok, err := pgPasswordMatches("md53b461e8f633058dcfa78b53066be45af", "engine", "engine-pw"); !ok || err != nil {
		t.Fatalf("md5 verifier: ok=%v err=%v", ok, err)
	}
	if ok, _ := pgPasswordMatches("", "engine", "x"); ok {
		t.Fatal("no password matched")
	}
}

func TestPgRoleDescribeMasksPassword(t *testing.T) {
	r := &PgRole{Name: "engine", Password: secret.Token("engine_db_password")}
	got := r.sql(true, r.maskedPassword())
	want := `ALTER ROLE "engine" WITH LOGIN NOSUPERUSER NOCREATEDB PASSWORD <secret:engine_db_password>` + ";\n"
	if got != want {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	if p := (&PgRole{Name: "engine", Password: "clear"}).maskedPassword(); p != hiddenValue {
		t.Fatalf("clear password shown as %q", p)
	}
}

func TestPgRoleServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	secrets := secret.Values{"pw": "first-pw"}
	r := &PgRole{Name: "engine", Password: secret.Token("pw"), CreateDB: true, PgConnection: srv.pgConn()}
	if ps := r.Validate(); len(ps) > 0 {
		t.Fatal(ps)
	}

	// Dry run: a read-only executor, nothing created.
	dry := pgStepRuntime(secrets, true)
	c, err := r.Check(ctx, dry)
	if err != nil || c.Done {
		t.Fatalf("check before: %+v %v", c, err)
	}
	acts, err := r.Describe(ctx, dry)
	if err != nil {
		t.Fatal(err)
	}
	if s := acts[0].Summary; !strings.Contains(s, `CREATE ROLE "engine" WITH LOGIN NOSUPERUSER CREATEDB PASSWORD <secret:pw>`) || strings.Contains(s, "first-pw") {
		t.Fatalf("describe: %s", s)
	}

	rt := pgStepRuntime(secrets, false)
	if _, err := applyShown(ctx, t, r, dry, rt); err != nil {
		t.Fatal(err)
	}
	if got := srv.psql(t, "SELECT rolcanlogin, rolcreatedb, rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'engine'"); got != "t|t|t" {
		t.Fatalf("role after create: %q", got)
	}
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check after create: %+v %v", c, err)
	}

	// A new password: Check sees the difference without logging in.
	secrets["pw"] = "second-pw"
	c, err = r.Check(ctx, dry)
	if err != nil || c.Done || !strings.Contains(c.Reason, "password differs") {
		t.Fatalf("check after password change: %+v %v", c, err)
	}
	acts, _ = r.Describe(ctx, dry)
	if !strings.Contains(acts[0].Summary, `ALTER ROLE "engine"`) {
		t.Fatalf("describe: %s", acts[0].Summary)
	}
	out, err := applyShown(ctx, t, r, dry, rt)
	if err != nil || !out.Changed {
		t.Fatalf("alter: %+v %v", out, err)
	}
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check after alter: %+v %v", c, err)
	}

	// md5 verifiers too.
	srv.psql(t, "SET password_encryption = 'md5'; ALTER ROLE engine PASSWORD 'second-pw'")
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check with md5: %+v %v", c, err)
	}
	r.CreateDB = false
	if c, _ := r.Check(ctx, dry); c.Done || !strings.Contains(c.Reason, "createdb is true, want false") {
		t.Fatalf("attribute change not seen: %+v", c)
	}
	r.CreateDB = true

	// password_encryption: scram-sha-256 on a server that stores md5 (as
	// PostgreSQL 13 does by default): the md5 verifier is not enough, and
	// the password is stored as asked, the server's setting left alone.
	srv.psql(t, "ALTER SYSTEM SET password_encryption = 'md5'; SELECT pg_reload_conf()")
	r.PasswordEncryption = "scram-sha-256"
	c, err = r.Check(ctx, dry)
	if err != nil || c.Done || !strings.Contains(c.Reason, "password stored as md5, want scram-sha-256") {
		t.Fatalf("check of an md5 verifier with password_encryption scram-sha-256: %+v %v", c, err)
	}
	if acts, _ := r.Describe(ctx, dry); !strings.HasPrefix(strings.SplitN(acts[0].Summary, "<<< ", 2)[1], "SET password_encryption = 'scram-sha-256'; ALTER ROLE") {
		t.Fatalf("describe: %s", acts[0].Summary)
	}
	if _, err := r.Apply(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if got := srv.psql(t, "SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'engine'"); got != "t" {
		t.Fatalf("verifier after apply: scram %q", got)
	}
	if got := srv.psql(t, "SHOW password_encryption"); got != "md5" {
		t.Fatalf("the server's password_encryption changed to %q", got)
	}
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check after apply: %+v %v", c, err)
	}
}

func TestPgRoleReplicationSQL(t *testing.T) {
	// The statement names REPLICATION only when the plan gives it, so the
	// dry run shows exactly what changes and an unmentioned attribute is
	// never reset.
	for _, tc := range []struct {
		name        string
		replication string
		exists      bool
		want        string
	}{
		{"create granted", "true", false, `CREATE ROLE "sub" WITH LOGIN NOSUPERUSER NOCREATEDB REPLICATION;` + "\n"},
		{"alter granted", "true", true, `ALTER ROLE "sub" WITH LOGIN NOSUPERUSER NOCREATEDB REPLICATION;` + "\n"},
		{"alter revoked", "false", true, `ALTER ROLE "sub" WITH LOGIN NOSUPERUSER NOCREATEDB NOREPLICATION;` + "\n"},
		{"not given", "", true, `ALTER ROLE "sub" WITH LOGIN NOSUPERUSER NOCREATEDB;` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &PgRole{Name: "sub", Replication: tc.replication}
			if got := r.sql(tc.exists, ""); got != tc.want {
				t.Fatalf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestPgRoleReplicationDifferences(t *testing.T) {
	for _, tc := range []struct {
		name        string
		have        bool // rolreplication
		replication string
		want        string // the expected differences, joined
	}{
		{"grant", false, "true", "replication is false, want true"},
		{"revoke", true, "false", "replication is true, want false"},
		{"granted already", true, "true", ""},
		{"revoked already", false, "false", ""},
		{"not given keeps REPLICATION", true, "", ""},
		{"not given keeps NOREPLICATION", false, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &PgRole{Name: "sub", Replication: tc.replication}
			st := pgRoleState{exists: true, login: true, replication: tc.have}
			if got := strings.Join(r.differences(st, ""), "; "); got != tc.want {
				t.Fatalf("differences: got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestPgRoleReplicationServer(t *testing.T) {
	srv := startPostgres(t)
	ctx := context.Background()
	dry := pgStepRuntime(nil, true)
	rt := pgStepRuntime(nil, false)
	for _, tc := range []struct {
		name       string
		setup      string // SQL run first as the superuser; "" = the role does not exist
		spec       PgRole // Name and the connection are filled in
		doneBefore bool
		reason     string // in Check's reason before Apply
		describe   string // in Describe's summary
		noDescribe string // not in Describe's summary
		changed    bool
		wantAuthid string // rolreplication|rolcreatedb after Apply
	}{
		{
			name:       "grant on an existing role",
			setup:      "CREATE ROLE %s LOGIN NOREPLICATION",
			spec:       PgRole{Replication: "true"},
			reason:     "replication is false, want true",
			describe:   `ALTER ROLE "%s" WITH LOGIN NOSUPERUSER NOCREATEDB REPLICATION`,
			changed:    true,
			wantAuthid: "t|f",
		},
		{
			name:       "revoke",
			setup:      "CREATE ROLE %s LOGIN REPLICATION",
			spec:       PgRole{Replication: "false"},
			reason:     "replication is true, want false",
			describe:   `ALTER ROLE "%s" WITH LOGIN NOSUPERUSER NOCREATEDB NOREPLICATION`,
			changed:    true,
			wantAuthid: "f|f",
		},
		{
			name:       "not given leaves REPLICATION",
			setup:      "CREATE ROLE %s LOGIN REPLICATION",
			spec:       PgRole{},
			doneBefore: true,
			noDescribe: "REPLICATION",
			wantAuthid: "t|f",
		},
		{
			// The ALTER that fixes another attribute must not reset
			// REPLICATION either.
			name:       "not given, another attribute altered",
			setup:      "CREATE ROLE %s LOGIN REPLICATION CREATEDB",
			spec:       PgRole{},
			reason:     "createdb is true, want false",
			describe:   `ALTER ROLE "%s" WITH LOGIN NOSUPERUSER NOCREATEDB;`,
			noDescribe: "REPLICATION",
			changed:    true,
			wantAuthid: "t|f",
		},
		{
			name:       "create with replication",
			spec:       PgRole{Replication: "true", CreateDB: true},
			reason:     "does not exist",
			describe:   `CREATE ROLE "%s" WITH LOGIN NOSUPERUSER CREATEDB REPLICATION`,
			changed:    true,
			wantAuthid: "t|t",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Lower case: the setup SQL names the role unquoted.
			name := "sub_" + strings.NewReplacer(" ", "_", ",", "").Replace(strings.ToLower(tc.name))
			if tc.setup != "" {
				srv.psql(t, strings.ReplaceAll(tc.setup, "%s", name))
			}
			r := tc.spec
			r.Name, r.PgConnection = name, srv.pgConn()
			if ps := r.Validate(); len(ps) > 0 {
				t.Fatal(ps)
			}

			c, err := r.Check(ctx, dry)
			if err != nil || c.Done != tc.doneBefore || !strings.Contains(c.Reason, tc.reason) {
				t.Fatalf("check before: %+v %v; want done=%v, reason with %q", c, err, tc.doneBefore, tc.reason)
			}
			acts, err := r.Describe(ctx, dry)
			if err != nil {
				t.Fatal(err)
			}
			sum := acts[0].Summary
			if want := strings.ReplaceAll(tc.describe, "%s", name); !strings.Contains(sum, want) {
				t.Fatalf("describe: %s\nwant it to contain %s", sum, want)
			}
			if tc.noDescribe != "" && strings.Contains(sum, tc.noDescribe) {
				t.Fatalf("describe names %s: %s", tc.noDescribe, sum)
			}

			out, err := r.Apply(ctx, rt)
			if err != nil || out.Changed != tc.changed {
				t.Fatalf("apply: %+v %v; want changed=%v", out, err, tc.changed)
			}
			if got := srv.psql(t, "SELECT rolreplication, rolcreatedb FROM pg_authid WHERE rolname = '"+name+"'"); got != tc.wantAuthid {
				t.Fatalf("pg_authid rolreplication|rolcreatedb after apply: %q, want %q", got, tc.wantAuthid)
			}
			if c, err := r.Check(ctx, dry); err != nil || !c.Done {
				t.Fatalf("check after: %+v %v", c, err)
			}
		})
	}
}
