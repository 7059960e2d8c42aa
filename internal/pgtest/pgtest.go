// Package pgtest starts throwaway PostgreSQL 15 clusters for tests: real
// servers run as the postgres OS user, as on a database host, each
// listening on a unix socket in a private directory only, so the clusters
// of parallel tests never meet. A cluster is stopped and removed when its
// test ends.
package pgtest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BinDir holds the PostgreSQL 15 server binaries the tests start.
const BinDir = "/usr/lib/postgresql/15/bin"

// Server is one throwaway cluster.
type Server struct {
	SocketDir string // unix_socket_directories: use as psql -h
	Port      int    // names the socket file (.s.PGSQL.PORT)
	DataDir   string
	ConfFile  string // DataDir/postgresql.conf
	HbaFile   string // DataDir/pg_hba.conf
	Locale    string // the locale initdb used: en_US.UTF-8, or C.UTF-8 where that is missing
	LogFile   string // server log, printed when the start fails
}

// SkipOrFail skips a test that cannot run here, except in CI, where a
// skipped database test would hide a regression: there it fails.
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true but: "+format, args...)
	}
	t.Skipf(format, args...)
}

// Start initialises and starts a cluster for t. It needs root (to run the
// server as the postgres OS user) and the PostgreSQL 15 binaries; without
// them the test is skipped (failed in CI). It does not flush to disk
// (fsync=off): tests want speed, not durability.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false)
}

// StartDurable is Start with PostgreSQL's default durability (fsync,
// synchronous_commit and full_page_writes on), for benchmarks whose
// figures depend on commits reaching the disk.
func StartDurable(t testing.TB) *Server {
	t.Helper()
	return start(t, true)
}

func start(t testing.TB, durable bool) *Server {
	t.Helper()
	if os.Geteuid() != 0 {
		SkipOrFail(t, "pgtest.Start needs root to run the server as the postgres user")
	}
	for _, bin := range []string{"initdb", "pg_ctl", "postgres"} {
		if _, err := os.Stat(filepath.Join(BinDir, bin)); err != nil {
			SkipOrFail(t, "PostgreSQL 15 binaries missing: %v", err)
		}
	}
	pgUser, err := user.Lookup("postgres")
	if err != nil {
		SkipOrFail(t, "no postgres OS user: %v", err)
	}
	uid, _ := strconv.Atoi(pgUser.Uid)
	gid, _ := strconv.Atoi(pgUser.Gid)

	// t.TempDir() lives under a 0700 root directory the postgres user
	// cannot traverse, so the cluster gets its own directory under the
	// system temp dir, owned by postgres and private to it.
	root, err := os.MkdirTemp("", "migrun-srv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	// Whose cluster it is: scripts/stop-test-clusters.sh stops those whose
	// test process is gone (killed, timed out) and left them running.
	if err := os.WriteFile(filepath.Join(root, "owner"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(root, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	srv := &Server{
		SocketDir: filepath.Join(root, "sock"),
		DataDir:   filepath.Join(root, "data"),
		LogFile:   filepath.Join(root, "server.log"),
		// Any port will do: with listen_addresses='' it only names the
		// socket file in the private socket directory.
		Port:   20000 + rand.IntN(40000),
		Locale: locale(t),
	}
	srv.ConfFile = filepath.Join(srv.DataDir, "postgresql.conf")
	srv.HbaFile = filepath.Join(srv.DataDir, "pg_hba.conf")
	for _, dir := range []string{srv.SocketDir, srv.DataDir} {
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	// Peer for local connections, like a RHEL host after
	// `postgresql-setup --initdb`; -N skips fsyncing the new cluster.
	RunAsPostgres(t, filepath.Join(BinDir, "initdb"), "-N", "-D", srv.DataDir,
		"--locale="+srv.Locale, "--encoding=UTF8", "--auth-local=peer", "--auth-host=scram-sha-256")

	// Connection settings go on the server's command line, not into
	// postgresql.conf, so tests editing that file start from initdb's
	// stock version. The rest only makes start-up and tests faster.
	settings := []string{
		"-c listen_addresses=''",
		"-c unix_socket_directories=" + srv.SocketDir,
		"-c port=" + strconv.Itoa(srv.Port),
		"-c shared_buffers=1MB",
		"-c max_wal_size=64MB",
	}
	if !durable {
		settings = append(settings, "-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off")
	}
	opts := strings.Join(settings, " ")
	start := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(BinDir, "pg_ctl"),
		"start", "-w", "-t", "60", "-D", srv.DataDir, "-l", srv.LogFile, "-o", opts)
	if out, err := start.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(srv.LogFile)
		t.Fatalf("pg_ctl start: %v\n%s\nserver log:\n%s", err, out, log)
	}
	t.Cleanup(func() {
		// Immediate: the cluster is thrown away, nothing needs flushing.
		stop := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(BinDir, "pg_ctl"),
			"stop", "-w", "-m", "immediate", "-D", srv.DataDir)
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("pg_ctl stop: %v\n%s", err, out)
		}
	})
	return srv
}

// Restart restarts the cluster with its original options, for tests of
// parameters that only take effect at server start.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(BinDir, "pg_ctl"),
		"restart", "-w", "-t", "60", "-m", "fast", "-D", s.DataDir, "-l", s.LogFile)
	if out, err := cmd.CombinedOutput(); err != nil {
		log, _ := os.ReadFile(s.LogFile)
		t.Fatalf("pg_ctl restart: %v\n%s\nserver log:\n%s", err, out, log)
	}
}

// Psql runs sql as the postgres superuser (in database "postgres" unless
// db is given) and returns the trimmed unaligned output, failing the test
// on error. Tests use it to set up and inspect state independently of the
// code under test.
func (s *Server) Psql(t testing.TB, sql string, db ...string) string {
	t.Helper()
	database := "postgres"
	if len(db) > 0 {
		database = db[0]
	}
	cmd := exec.Command("runuser", "-u", "postgres", "--", filepath.Join(BinDir, "psql"),
		"-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
		"-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-d", database)
	cmd.Stdin = strings.NewReader(sql)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("psql %q: %v: %s", sql, err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// Hold keeps a client (application_name still-writing) connected to db
// until the returned function ends it.
func (s *Server) Hold(t testing.TB, db string) (release func()) {
	t.Helper()
	cmd := exec.Command("runuser", "-u", "postgres", "--", "psql", "-X", "-h", s.SocketDir, "-p", strconv.Itoa(s.Port), "-d", db, "-c", "SELECT pg_sleep(60)")
	cmd.Env = append(os.Environ(), "PGAPPNAME=still-writing")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	release = func() {
		s.Psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'still-writing'")
		_ = cmd.Wait()
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.Psql(t, "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'still-writing'") == "0" {
		if time.Now().After(deadline) {
			release()
			t.Fatal("the sleeping client never connected")
		}
		time.Sleep(50 * time.Millisecond)
	}
	return release
}

// RunAsPostgres runs argv as the postgres OS user, failing t on error.
func RunAsPostgres(t testing.TB, argv ...string) {
	t.Helper()
	cmd := exec.Command("runuser", append([]string{"-u", "postgres", "--"}, argv...)...)
	begin := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	t.Logf("%s took %v", filepath.Base(argv[0]), time.Since(begin).Round(time.Millisecond))
}

// locale picks en_US.UTF-8, what the oVirt engine database wants, or
// C.UTF-8 on hosts without it (minimal containers).
func locale(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("locale", "-a").Output()
	if err != nil {
		t.Logf("locale -a: %v; using C.UTF-8", err)
		return "C.UTF-8"
	}
	for _, l := range strings.Fields(string(out)) {
		// locale -a spells it en_US.utf8.
		if n := strings.ToLower(strings.ReplaceAll(l, "-", "")); n == "en_us.utf8" {
			return "en_US.UTF-8"
		}
	}
	return "C.UTF-8"
}

// OwnDatabase makes a database called name owned by a login role of the
// OS user the tests run as (root), who reaches it by peer authentication
// as an ordinary, not superuser, role; it returns a keyword/value
// connection string for it.
func (s *Server) OwnDatabase(t testing.TB, name string) string {
	t.Helper()
	s.Psql(t, "CREATE ROLE root LOGIN; CREATE DATABASE "+name+" OWNER root;")
	return fmt.Sprintf("host=%s port=%d dbname=%s user=root", s.SocketDir, s.Port, name)
}
