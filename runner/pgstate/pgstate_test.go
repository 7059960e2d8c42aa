package pgstate_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/pgtest"
	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/runner/pgstate"
)

// holdEnv makes the test binary a lock holder (see TestMain): it takes the
// lock of the plan "held" in the state database it names, says "locked"
// and waits to be killed.
const holdEnv = "MIGRUN_PGSTATE_TEST_HOLD"

func TestMain(m *testing.M) {
	if conn := os.Getenv(holdEnv); conn != "" {
		ctx := context.Background()
		s, err := pgstate.Open(conn, pgstate.Options{})
		if err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		if _, err := s.Lock(ctx, "held", runner.Holder{PID: os.Getpid(), User: "holder", Workstation: "ws-a", Since: time.Now()}); err != nil {
			fmt.Println(err)
			os.Exit(1)
		}
		fmt.Println("locked")
		time.Sleep(time.Hour)
	}
	os.Exit(m.Run())
}

// stateDB starts a cluster with a database "state" owned by the role the
// tests run as (root, by peer authentication; not a superuser), and
// returns its connection string.
func stateDB(t *testing.T) (*pgtest.Server, string) {
	t.Helper()
	srv := pgtest.Start(t)
	return srv, srv.OwnDatabase(t, "state")
}

func open(t *testing.T, conn string, opts pgstate.Options) *pgstate.Store {
	t.Helper()
	s, err := pgstate.Open(conn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func holder(ws string) runner.Holder {
	return runner.Holder{PID: os.Getpid(), User: "tester", Workstation: ws, Since: time.Now()}
}

func TestOpenRefusesPasswords(t *testing.T) {
	for _, conn := range []string{
		"postgres://migrun:s3cret@db.example.com/state",
		"postgresql://db.example.com/state?password=s3cret",
		"host=db.example.com dbname=state password=s3cret",
		"host=db.example.com password =s3cret dbname=state",
	} {
		_, err := pgstate.Open(conn, pgstate.Options{})
		if err == nil || !strings.Contains(err.Error(), "PGPASSWORD") || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("Open(%q) = %v; want a refusal pointing at PGPASSWORD, without the password", conn, err)
		}
	}
}

func TestJournalRoundTrip(t *testing.T) {
	srv, conn := stateDB(t)
	ctx := context.Background()
	a := open(t, conn, pgstate.Options{})
	if j, err := a.Read(ctx, "move"); j != nil || err != nil {
		t.Fatalf("Read of a new store = %v, %v; want nil, nil", j, err)
	}
	lk, err := a.Lock(ctx, "move", holder("ws-a"))
	if err != nil {
		t.Fatal(err)
	}
	j := &runner.Journal{Version: 1, Plan: "move", RunID: "run-1", Status: runner.StatusRunning,
		History: []runner.RunRecord{{RunID: "inv-1", Mode: "fresh", User: "tester", From: "ws-a"}},
		Steps:   []*runner.StepRecord{{ID: "stop", Status: runner.StatusPending}, {ID: "dump", Status: runner.StatusPending}}}
	if err := lk.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	entries := []struct {
		e    runner.LogEntry
		sync bool
	}{
		{runner.LogEntry{Run: "inv-1", List: "steps", Index: 0, Step: &runner.StepRecord{ID: "stop", Status: runner.StatusRunning}, Status: runner.StatusRunning}, true},
		{runner.LogEntry{Run: "inv-1", List: "steps", Index: 0, Step: &runner.StepRecord{ID: "stop", Status: runner.StatusDone, Changed: true}, Status: runner.StatusRunning}, false},
		// An entry of another invocation is not this run's: left out.
		{runner.LogEntry{Run: "inv-0", List: "steps", Index: 1, Step: &runner.StepRecord{ID: "dump", Status: runner.StatusDone}, Status: runner.StatusCompleted}, false},
		{runner.LogEntry{Run: "inv-1", List: "steps", Index: 1, Step: &runner.StepRecord{ID: "dump", Status: runner.StatusRunning}, Status: runner.StatusRunning}, true},
	}
	for _, e := range entries {
		if err := lk.Append(ctx, e.e, e.sync); err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Psql(t, "SELECT count(*) FROM migrun.transitions", "state"); got != "4" {
		t.Fatalf("transitions rows = %s, want 4", got)
	}
	// Another workstation reads the journal while the run holds it.
	b := open(t, conn, pgstate.Options{})
	got, err := b.Read(ctx, "move")
	if err != nil {
		t.Fatal(err)
	}
	if s := steps(got); s != "stop=done,dump=running" || got.Status != runner.StatusRunning {
		t.Fatalf("read from b: %s, run %s; want stop=done,dump=running, run running", s, got.Status)
	}
	// Save folds the transitions into the snapshot and drops them.
	j.Steps[0].Status, j.Steps[1].Status, j.Status = runner.StatusDone, runner.StatusDone, runner.StatusCompleted
	if err := lk.Save(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got := srv.Psql(t, "SELECT count(*) FROM migrun.transitions", "state"); got != "0" {
		t.Fatalf("transitions after a save = %s, want 0", got)
	}
	if err := lk.Release(true); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.Read(ctx, "move"); steps(got) != "stop=done,dump=done" || got.Status != runner.StatusCompleted {
		t.Fatalf("after the final save: %s %s", steps(got), got.Status)
	}
	if by := srv.Psql(t, "SELECT saved_by FROM migrun.journals WHERE name = 'move'", "state"); !strings.Contains(by, "tester@ws-a") {
		t.Errorf("saved_by = %q, want the user and workstation", by)
	}
	names, err := b.Names(ctx)
	if err != nil || strings.Join(names, ",") != "move" {
		t.Errorf("Names = %v, %v", names, err)
	}
}

func steps(j *runner.Journal) string {
	if j == nil {
		return "<nil>"
	}
	var out []string
	for _, s := range j.Steps {
		out = append(out, s.ID+"="+s.Status)
	}
	return strings.Join(out, ",")
}

// TestLockSurvivesKill: the lock is held by another process, refused with
// its holder named, and free again once that process is killed with
// SIGKILL, without anyone unlocking it.
func TestLockSurvivesKill(t *testing.T) {
	_, conn := stateDB(t)
	ctx := context.Background()
	s := open(t, conn, pgstate.Options{})

	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), holdEnv+"="+conn)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "locked" {
		t.Fatalf("holder: %q", line)
	}

	if h, err := s.HeldBy(ctx, "held"); !strings.Contains(h, "migrun pid "+strconv.Itoa(cmd.Process.Pid)) || err != nil {
		t.Fatalf("HeldBy while held = %q, %v; want the holder", h, err)
	}
	_, err = s.Lock(ctx, "held", holder("ws-b"))
	if !errors.Is(err, runner.ErrLocked) || !strings.Contains(err.Error(), "migrun pid "+strconv.Itoa(cmd.Process.Pid)+" holder@ws-a") {
		t.Fatalf("Lock while held = %v; want ErrLocked naming the holder's pid, user and workstation", err)
	}
	// Another plan's lock is another lock.
	other, err := s.Lock(ctx, "other", holder("ws-b"))
	if err != nil {
		t.Fatalf("another plan's lock: %v", err)
	}
	other.Release(true)

	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for {
		lk, err := s.Lock(ctx, "held", holder("ws-b"))
		if err == nil {
			lk.Release(true)
			if h, err := s.HeldBy(ctx, "held"); h != "" || err != nil {
				t.Fatalf("HeldBy after the release = %q, %v; want free", h, err)
			}
			return
		}
		if !errors.Is(err, runner.ErrLocked) || time.Now().After(deadline) {
			t.Fatalf("Lock after the holder was killed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestLockLost: a session ended under a held lock is noticed (Lost), and
// the writes that follow fail: the lock may be another's by then.
func TestLockLost(t *testing.T) {
	srv, conn := stateDB(t)
	ctx := context.Background()
	s := open(t, conn, pgstate.Options{PingEvery: 20 * time.Millisecond})
	lk, err := s.Lock(ctx, "move", holder("ws-a"))
	if err != nil {
		t.Fatal(err)
	}
	defer lk.Release(false)
	if err := lk.Save(ctx, &runner.Journal{Version: 1, Plan: "move"}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lk.Lost():
		t.Fatal("Lost before anything happened")
	case <-time.After(100 * time.Millisecond):
	}
	srv.Psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'migrun pid %'")
	select {
	case <-lk.Lost():
	case <-time.After(10 * time.Second):
		t.Fatal("the ended session was not noticed")
	}
	err = lk.Append(ctx, runner.LogEntry{Run: "x", Status: runner.StatusRunning}, true)
	if !errors.Is(err, runner.ErrLockLost) {
		t.Fatalf("Append after the session ended = %v, want ErrLockLost", err)
	}
}

// TestResumeFromAnotherWorkstation runs a plan whose second step fails
// from "workstation A" (its own state client, its own files), then
// resumes it from "workstation B" with a fresh client of the same state
// database: B goes on from the failed step, and the first step is not run
// again.
func TestResumeFromAnotherWorkstation(t *testing.T) {
	_, conn := stateDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := fmt.Sprintf(`version: 1
name: move
hosts:
  here: {local: true}
steps:
  - id: first
    host: here
    command: {script: "echo ran >> %[1]s/first.count"}
  - id: second
    host: here
    command: {script: "test -e %[1]s/fixed && echo ran >> %[1]s/second.count"}
`, dir)
	p := parsePlan(t, dir, src, nil)

	a := open(t, conn, pgstate.Options{})
	_, err := runner.New(p, local, nil, runner.Options{State: a, StateDir: filepath.Join(dir, "ws-a")}).Apply(ctx)
	var runErr *runner.RunError
	if !errors.As(err, &runErr) {
		t.Fatalf("A's apply = %v, want the second step's failure", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ws-a")); !os.IsNotExist(err) {
		t.Fatalf("A wrote a state directory with a database store: %v", err)
	}

	os.WriteFile(filepath.Join(dir, "fixed"), nil, 0o600)
	b := open(t, conn, pgstate.Options{})
	if _, err := runner.New(p, local, nil, runner.Options{State: b}).Apply(ctx); !errors.Is(err, runner.ErrUnfinished) {
		t.Fatalf("B's plain apply = %v, want ErrUnfinished: A's run is in the database", err)
	}
	j, err := runner.New(p, local, nil, runner.Options{State: b, Resume: true}).Apply(ctx)
	if err != nil {
		t.Fatalf("B's resume: %v", err)
	}
	if j.Status != runner.StatusCompleted || len(j.History) != 2 || j.History[1].Mode != "resume" {
		t.Fatalf("B's journal: status %s, history %+v", j.Status, j.History)
	}
	for file, want := range map[string]string{"first.count": "ran\n", "second.count": "ran\n"} {
		if got, _ := os.ReadFile(filepath.Join(dir, file)); string(got) != want {
			t.Errorf("%s = %q, want %q (each step ran once in all)", file, got, want)
		}
	}
	if got, _ := a.Read(ctx, "move"); got == nil || got.Status != runner.StatusCompleted {
		t.Errorf("A reads %v after B's resume, want the completed run", got)
	}
}

// TestRunStopsWhenLockLost: the session holding a running apply's lock is
// ended (as a database failover or an administrator would); the apply
// stops its step and returns ErrLockLost instead of running on unlocked.
func TestRunStopsWhenLockLost(t *testing.T) {
	srv, conn := stateDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := fmt.Sprintf(`version: 1
name: slow
hosts:
  here: {local: true}
steps:
  - id: long
    host: here
    command: {script: "sleep 30; touch %s/finished"}
`, dir)
	p := parsePlan(t, dir, src, nil)
	s := open(t, conn, pgstate.Options{PingEvery: 50 * time.Millisecond})
	done := make(chan error, 1)
	go func() {
		_, err := runner.New(p, local, nil, runner.Options{State: s}).Apply(ctx)
		done <- err
	}()
	deadline := time.Now().Add(20 * time.Second)
	running := func() bool {
		// The run's Lock makes the tables.
		return srv.Psql(t, "SELECT to_regclass('migrun.transitions') IS NOT NULL", "state") == "t" &&
			srv.Psql(t, "SELECT count(*) FROM migrun.transitions WHERE entry->'step'->>'status' = 'running'", "state") != "0"
	}
	for !running() {
		if time.Now().After(deadline) {
			t.Fatal("the step never started")
		}
		time.Sleep(50 * time.Millisecond)
	}
	begin := time.Now()
	srv.Psql(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'migrun pid %'")
	select {
	case err := <-done:
		if !errors.Is(err, runner.ErrLockLost) {
			t.Fatalf("Apply = %v, want ErrLockLost", err)
		}
		t.Logf("stopped %v after the session ended", time.Since(begin).Round(time.Millisecond))
	case <-time.After(15 * time.Second):
		t.Fatal("the apply ran on after losing its lock")
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); !os.IsNotExist(err) {
		t.Fatalf("the step finished after the lock was lost: %v", err)
	}
	// The journal in the database still shows the step running: a resume
	// re-checks it.
	j, err := s.Read(ctx, "slow")
	if err != nil || steps(j) != "long=running" {
		t.Fatalf("journal after the loss: %s, %v", steps(j), err)
	}
}

// local connects every host of the test plans: the machine itself.
func local(_ context.Context, h plan.Host) (executors.Executor, error) {
	return executors.NewLocal(h.Name), nil
}

// TestFleetSplitBetweenWorkers: two migruns ("workers", each its own
// client of the state database) are given the same six sets, two at a
// time each. Every set runs exactly once in all, the one made to fail
// fails once, and each worker reports the sets it did not run as taken,
// done before or unfinished.
func TestFleetSplitBetweenWorkers(t *testing.T) {
	_, conn := stateDB(t)
	ctx := context.Background()
	dir := t.TempDir()
	src := fmt.Sprintf(`version: 1
name: fleet
vars: {set: none}
hosts:
  here: {local: true}
steps:
  - id: work
    host: here
    command: {script: "echo ran >> %[1]s/${set}.count; sleep 0.2; test ${set} != s4"}
`, dir)
	sets := []string{"s1", "s2", "s3", "s4", "s5", "s6"}
	worker := func() []runner.SetResult {
		store := open(t, conn, pgstate.Options{})
		return runner.RunFleet(ctx, sets, 2, func(ctx context.Context, set string) (*runner.Journal, error) {
			p := parsePlan(t, dir, src, map[string]string{"set": set})
			return runner.New(p, local, nil, runner.Options{State: store, Set: set}).Apply(ctx)
		})
	}
	var a, b []runner.SetResult
	done := make(chan struct{})
	go func() { a = worker(); close(done) }()
	b = worker()
	<-done

	ranBy := map[string]int{}
	for _, results := range [][]runner.SetResult{a, b} {
		for _, r := range results {
			switch r.Outcome {
			case runner.SetCompleted, runner.SetFailed:
				ranBy[r.Set]++
			case runner.SetTaken, runner.SetDoneBefore, runner.SetUnfinished:
			default:
				t.Errorf("%s: %s (%v)", r.Set, r.Outcome, r.Err)
			}
			if r.Set == "s4" && r.Outcome == runner.SetCompleted {
				t.Errorf("s4 completed; it was made to fail")
			}
		}
	}
	for _, set := range sets {
		count, _ := os.ReadFile(filepath.Join(dir, set+".count"))
		if ranBy[set] != 1 || string(count) != "ran\n" {
			t.Errorf("set %s: run by %d workers, its step ran %q; want once", set, ranBy[set], count)
		}
	}
	t.Logf("worker a: %v", summary(a))
	t.Logf("worker b: %v", summary(b))
}

func summary(results []runner.SetResult) string {
	var out []string
	for _, r := range results {
		out = append(out, r.Set+"="+r.Outcome)
	}
	return strings.Join(out, " ")
}

// parsePlan loads the plan text src as dir/plan.yaml with vars.
func parsePlan(t *testing.T, dir, src string, vars map[string]string) *plan.Plan {
	t.Helper()
	p, err := plan.Parse(filepath.Join(dir, "plan.yaml"), []byte(src), nil, vars)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
