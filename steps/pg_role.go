package steps

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/secret"
	"github.com/migrun/migrun/steps/internal/pg"
)

var pgRoleKind = Kind{
	Name:      "pg_role",
	Summary:   "create a PostgreSQL role or bring its attributes and password to the wanted state",
	NeedsHost: true,
	New:       func() Spec { return new(PgRole) },
}

var _ Spec = (*PgRole)(nil)

// PgRole makes sure a role exists with the given attributes and password,
// running CREATE ROLE or ALTER ROLE through psql as the PostgreSQL
// superuser on the database host.
//
// Check tells "password already set" without logging in: it recomputes
// the stored verifier from pg_authid (SCRAM-SHA-256 StoredKey and
// ServerKey from the stored salt and iteration count, or the md5 hash) and
// compares. The password itself only ever travels on psql's stdin.
type PgRole struct {
	Name      string `yaml:"name" required:"true" doc:"the role name, e.g. engine"`
	Password  string `yaml:"password" secret:"allowed" doc:"the role's password, normally \"${secret}\"; empty leaves the password alone. Stored as the server's password_encryption says (scram-sha-256 by default)"`
	Login     string `yaml:"login" enum:"true|false" default:"true" doc:"the role may log in (LOGIN / NOLOGIN)"`
	Superuser bool   `yaml:"superuser" default:"false" doc:"SUPERUSER / NOSUPERUSER"`
	CreateDB  bool   `yaml:"createdb" default:"false" doc:"CREATEDB / NOCREATEDB"`
	// Replication is tri-state, unlike the attributes above: a plan that
	// does not mention it must not revoke REPLICATION from a role that
	// has it (a replication user set up outside the plan, or by an
	// earlier step), so empty leaves the attribute alone.
	Replication string `yaml:"replication" enum:"true|false" doc:"REPLICATION / NOREPLICATION: the role may open replication connections (a logical-replication subscriber connects as it); left as it is when not given"`
	// PasswordEncryption pins how the password is stored: a pg_hba.conf
	// rule of method scram-sha-256 refuses a role whose verifier is md5,
	// which is what a server with PostgreSQL 13's default (or initialised
	// with --auth-host=md5) stores.
	PasswordEncryption string `yaml:"password_encryption" enum:"scram-sha-256|md5" doc:"store the password this way whatever the server's password_encryption (a password stored another way is set again); scram-sha-256 where pg_hba.conf says scram-sha-256. Not given: as the server's setting says"`

	PgConnection `yaml:",inline"`
}

// Validate checks what the tags cannot.
func (r *PgRole) Validate() []Problem {
	var ps []Problem
	if r.Name != "" && strings.HasPrefix(strings.ToLower(r.Name), "pg_") {
		ps = append(ps, Problem{"name", fmt.Sprintf("%q: role names starting with pg_ are reserved by PostgreSQL", r.Name)})
	}
	return append(ps, r.PgConnection.validate("")...)
}

// Hosts is the step's host: the database server.
func (r *PgRole) Hosts(stepHost string) []string { return []string{stepHost} }

func (r *PgRole) login() bool { return r.Login != "false" }

// replication is the wanted REPLICATION attribute; managed is false when
// the plan does not give it and the role keeps what it has.
func (r *PgRole) replication() (want, managed bool) {
	return r.Replication == "true", r.Replication != ""
}

// pgRoleState is the role as pg_authid has it.
type pgRoleState struct {
	exists                   bool
	login, superuser, create bool
	replication              bool
	password                 string // the stored verifier, "" if none
}

// state reads the role. Reading pg_authid (not pg_roles, which masks the
// password) needs superuser, which the os_user's peer login is.
func (r *PgRole) state(ctx context.Context, ex executors.Executor) (pgRoleState, error) {
	rows, err := pg.Probe(ctx, ex, r.target("postgres"),
		"SELECT rolcanlogin, rolsuper, rolcreatedb, rolreplication, coalesce(rolpassword, '') FROM pg_authid WHERE rolname = "+pg.Literal(r.Name)+";\n",
		"holds the password verifier")
	if err != nil {
		return pgRoleState{}, err
	}
	if len(rows) == 0 {
		return pgRoleState{}, nil
	}
	if len(rows[0]) != 5 {
		return pgRoleState{}, fmt.Errorf("%s: unexpected pg_authid row %q", ex.Name(), rows[0])
	}
	row := rows[0]
	return pgRoleState{exists: true, login: row[0] == "t", superuser: row[1] == "t", create: row[2] == "t",
		replication: row[3] == "t", password: row[4]}, nil
}

// differences lists what is not as wanted; password is the revealed
// wanted password ("" = not managed).
func (r *PgRole) differences(st pgRoleState, password string) []string {
	if !st.exists {
		return []string{"role " + r.Name + " does not exist"}
	}
	var diffs []string
	attr := func(name string, have, want bool) {
		if have != want {
			diffs = append(diffs, fmt.Sprintf("%s is %v, want %v", name, have, want))
		}
	}
	attr("login", st.login, r.login())
	attr("superuser", st.superuser, r.Superuser)
	attr("createdb", st.create, r.CreateDB)
	if want, managed := r.replication(); managed {
		attr("replication", st.replication, want)
	}
	if password != "" {
		switch ok, err := pgPasswordMatches(st.password, r.Name, password); {
		case err != nil:
			diffs = append(diffs, "password: "+err.Error())
		case !ok:
			diffs = append(diffs, "password differs")
		case r.PasswordEncryption != "" && passwordEncryptionOf(st.password) != r.PasswordEncryption:
			diffs = append(diffs, "password stored as "+passwordEncryptionOf(st.password)+", want "+r.PasswordEncryption)
		}
	}
	return diffs
}

// passwordEncryptionOf names how a pg_authid.rolpassword value is stored.
func passwordEncryptionOf(stored string) string {
	switch {
	case strings.HasPrefix(stored, "SCRAM-SHA-256$"):
		return "scram-sha-256"
	case strings.HasPrefix(stored, "md5") && len(stored) == 35:
		return "md5"
	case stored == "":
		return "none"
	}
	return "plain text"
}

// Check is done when the role exists with the wanted attributes and, when
// a password is given, the stored verifier matches it.
func (r *PgRole) Check(ctx context.Context, rt *Runtime) (Check, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Check{}, err
	}
	st, err := r.state(ctx, ex)
	if pg.NotReady(err) {
		return Check{Unknown: true, Reason: "the server is not reachable yet: " + err.Error()}, nil
	}
	if err != nil {
		return Check{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	password, err := rt.Secrets.Reveal(r.Password)
	if err != nil {
		return Check{}, fmt.Errorf("password: %w", err)
	}
	if diffs := r.differences(st, password); len(diffs) > 0 {
		return Check{Reason: strings.Join(diffs, "; ")}, nil
	}
	reason := "role " + r.Name + " exists with the wanted attributes"
	if password != "" {
		reason += " and password"
	}
	return Check{Done: true, Reason: reason}, nil
}

// sql is the statement for the role: CREATE when it does not exist, else
// ALTER. password is what goes after PASSWORD (the revealed literal, or
// its masked form for the dry run). Statement logging is switched off for
// the session first, so the server log never records the password even
// with log_statement = all or when the statement fails.
func (r *PgRole) sql(exists bool, password string) string {
	verb := "CREATE"
	if exists {
		verb = "ALTER"
	}
	opt := func(on bool, name string) string {
		if on {
			return name
		}
		return "NO" + name
	}
	s := fmt.Sprintf("%s ROLE %s WITH %s %s %s", verb, pg.Ident(r.Name),
		opt(r.login(), "LOGIN"), opt(r.Superuser, "SUPERUSER"), opt(r.CreateDB, "CREATEDB"))
	// Only when given: leaving it out keeps an existing role's attribute
	// and creates a new role with PostgreSQL's default, NOREPLICATION.
	if want, managed := r.replication(); managed {
		s += " " + opt(want, "REPLICATION")
	}
	if password != "" {
		s += " PASSWORD " + password
	}
	s += ";\n"
	if password != "" && r.PasswordEncryption != "" {
		// For this statement only; the server's setting is left alone.
		s = "SET password_encryption = " + pg.Literal(r.PasswordEncryption) + ";\n" + s
	}
	return s
}

// maskedPassword is how the dry run shows the password: its secret's
// name, or <hidden> for a password written in clear in the plan.
func (r *PgRole) maskedPassword() string {
	if r.Password == "" {
		return ""
	}
	if secret.Contains(r.Password) {
		return secret.Mask(r.Password)
	}
	return hiddenValue
}

// Describe shows the statement psql would run, the password masked.
func (r *PgRole) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	exists, known := false, false
	if ex, err := rt.Executor(ctx, rt.Host); err == nil {
		if st, err := r.state(ctx, ex); err == nil {
			exists, known = st.exists, true
		}
	}
	sum := pg.Action(rt.Host, r.target("postgres"), r.sql(exists, r.maskedPassword()))
	if !known {
		sum += " (CREATE ROLE if the role does not exist then)"
	}
	return []Action{{Host: rt.Host, Summary: sum}}, nil
}

// Apply creates or alters the role, then reads it back.
func (r *PgRole) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	ex, err := rt.Executor(ctx, rt.Host)
	if err != nil {
		return Outcome{}, err
	}
	password, err := rt.Secrets.Reveal(r.Password)
	if err != nil {
		return Outcome{}, fmt.Errorf("password: %w", err)
	}
	st, err := r.state(ctx, ex)
	if err != nil {
		return Outcome{}, fmt.Errorf("role %s: %w", r.Name, err)
	}
	if len(r.differences(st, password)) == 0 {
		return Outcome{Output: "role " + r.Name + " already as wanted"}, nil
	}
	lit := ""
	if password != "" {
		lit = pg.Literal(password)
	}
	if _, err := pg.ExecSecret(ctx, ex, r.target("postgres"), pg.QuietSessionSQL+r.sql(st.exists, lit)); err != nil {
		// psql echoes the failing statement only with ECHO errors, which
		// is off; redact anyway in case a server message quotes it.
		return Outcome{Changed: true}, fmt.Errorf("role %s: %s", r.Name, rt.Secrets.Redact(err.Error()))
	}
	after, err := r.state(ctx, ex)
	if err != nil {
		return Outcome{Changed: true}, fmt.Errorf("role %s: read back: %w", r.Name, err)
	}
	verb := "created"
	if st.exists {
		verb = "altered"
	}
	if diffs := r.differences(after, password); len(diffs) > 0 {
		return Outcome{Changed: true}, fmt.Errorf("%s: role %s %s but still: %s", ex.Name(), r.Name, verb, strings.Join(diffs, "; "))
	}
	return Outcome{Changed: true, Output: "role " + r.Name + " " + verb}, nil
}

// pgPasswordMatches reports whether stored, a pg_authid.rolpassword value,
// is the verifier of password for role. It understands SCRAM-SHA-256
// (PostgreSQL 10+) and md5 verifiers; a password stored in clear (only
// possible before PostgreSQL 10) is compared as is.
func pgPasswordMatches(stored, role, password string) (bool, error) {
	switch {
	case stored == "":
		return false, nil
	case strings.HasPrefix(stored, "SCRAM-SHA-256$"):
		return scramMatches(stored, password)
	case strings.HasPrefix(stored, "md5") && len(stored) == 35:
		sum := md5.Sum([]byte(password + role))
		return hmac.Equal([]byte(stored[3:]), []byte(hex.EncodeToString(sum[:]))), nil
	}
	return hmac.Equal([]byte(stored), []byte(password)), nil
}

// scramMatches checks a SCRAM-SHA-256 verifier of the form
// SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (RFC 5802,
// RFC 7677) against password: SaltedPassword = PBKDF2(password, salt, i),
// StoredKey = H(HMAC(SaltedPassword, "Client Key")), ServerKey =
// HMAC(SaltedPassword, "Server Key").
func scramMatches(verifier, password string) (bool, error) {
	rest := strings.TrimPrefix(verifier, "SCRAM-SHA-256$")
	params, keys, ok := strings.Cut(rest, "$")
	iterText, saltText, ok1 := strings.Cut(params, ":")
	storedText, serverText, ok2 := strings.Cut(keys, ":")
	if !ok || !ok1 || !ok2 {
		return false, fmt.Errorf("malformed SCRAM-SHA-256 verifier")
	}
	iter, err := strconv.Atoi(iterText)
	if err != nil || iter <= 0 {
		return false, fmt.Errorf("malformed SCRAM-SHA-256 iteration count")
	}
	salt, err1 := base64.StdEncoding.DecodeString(saltText)
	storedKey, err2 := base64.StdEncoding.DecodeString(storedText)
	serverKey, err3 := base64.StdEncoding.DecodeString(serverText)
	if err1 != nil || err2 != nil || err3 != nil {
		return false, fmt.Errorf("malformed SCRAM-SHA-256 verifier encoding")
	}
	// PostgreSQL runs the password through SASLprep first; for ASCII
	// (the norm for generated passwords) that is the identity. Other
	// passwords may normalise differently: report them as unverifiable
	// rather than guess, and the step sets the password again.
	for i := 0; i < len(password); i++ {
		if password[i] >= 0x80 {
			return false, fmt.Errorf("cannot verify a non-ASCII password without SASLprep: setting it again")
		}
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, sha256.Size)
	if err != nil {
		return false, fmt.Errorf("SCRAM-SHA-256: %w", err)
	}
	clientKey := scramHMAC(salted, "Client Key")
	wantStored := sha256.Sum256(clientKey)
	wantServer := scramHMAC(salted, "Server Key")
	return hmac.Equal(wantStored[:], storedKey) && hmac.Equal(wantServer, serverKey), nil
}

func scramHMAC(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
