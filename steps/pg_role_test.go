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
	pg := startPostgres(t)
	ctx := context.Background()
	secrets := secret.Values{"pw": "first-pw"}
	r := &PgRole{Name: "engine", Password: secret.Token("pw"), CreateDB: true, PgConnection: pg.pgConn()}
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
	if _, err := r.Apply(ctx, rt); err != nil {
		t.Fatal(err)
	}
	if got := pg.psql(t, "SELECT rolcanlogin, rolcreatedb, rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'engine'"); got != "t|t|t" {
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
	out, err := r.Apply(ctx, rt)
	if err != nil || !out.Changed {
		t.Fatalf("alter: %+v %v", out, err)
	}
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check after alter: %+v %v", c, err)
	}

	// md5 verifiers too.
	pg.psql(t, "SET password_encryption = 'md5'; ALTER ROLE engine PASSWORD 'second-pw'")
	if c, err := r.Check(ctx, dry); err != nil || !c.Done {
		t.Fatalf("check with md5: %+v %v", c, err)
	}
	r.CreateDB = false
	if c, _ := r.Check(ctx, dry); c.Done || !strings.Contains(c.Reason, "createdb is true, want false") {
		t.Fatalf("attribute change not seen: %+v", c)
	}
}
