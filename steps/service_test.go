package steps

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
)

// scriptedHost is a fake executor for the host kinds: it records every
// command and answers from scripted replies, the first whose prefix
// matches the command line (as hostSession.show renders it) and has uses
// left. Only Run is implemented.
type scriptedHost struct {
	executors.Executor // nil: other methods are not expected
	t                  *testing.T
	mu                 sync.Mutex
	replies            []*scriptedReply
	ran                []executors.Command
}

type scriptedReply struct {
	prefix string
	code   int    // exit status
	out    string // stdout
	errOut string // stderr
	err    error  // returned as is, for a probe that could not run
	times  int    // >0: answers this many times, then no longer matches
}

// replyOK, replyFail and replyOut build replies.
func replyOK(prefix, out string) *scriptedReply { return &scriptedReply{prefix: prefix, out: out} }
func replyFail(prefix string, code int, stderr string) *scriptedReply {
	return &scriptedReply{prefix: prefix, code: code, errOut: stderr}
}
func replyOut(prefix string, code int, out string) *scriptedReply {
	return &scriptedReply{prefix: prefix, code: code, out: out}
}

// once makes r answer n times only.
func (r *scriptedReply) once(n int) *scriptedReply { r.times = n; return r }

func newScriptedHost(t *testing.T, replies ...*scriptedReply) *scriptedHost {
	return &scriptedHost{t: t, replies: replies}
}

func (s *scriptedHost) Name() string { return "db" }

// cmdLine renders cmd like hostSession.show, independently of it.
func cmdLine(cmd executors.Command) string {
	var words []string
	keys := make([]string, 0, len(cmd.Env))
	for k := range cmd.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		words = append(words, k+"="+executors.Quote(cmd.Env[k]))
	}
	if cmd.Script != "" {
		words = append(words, cmd.Script)
	} else {
		words = append(words, executors.QuoteArgv(cmd.Argv))
	}
	return strings.Join(words, " ")
}

func (s *scriptedHost) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	line := cmdLine(cmd)
	s.mu.Lock()
	s.ran = append(s.ran, cmd)
	var r *scriptedReply
	for _, c := range s.replies {
		if strings.HasPrefix(line, c.prefix) && c.times >= 0 {
			if c.times > 0 {
				if c.times--; c.times == 0 {
					c.times = -1 // used up
				}
			}
			r = c
			break
		}
	}
	s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return executors.Result{ExitCode: -1}, err
	}
	if r == nil {
		// Unscripted capability probes answer "not here".
		if !strings.HasPrefix(line, "command -v ") {
			s.t.Errorf("unscripted command: %s", line)
		}
		r = &scriptedReply{code: 1}
	}
	if r.err != nil {
		return executors.Result{}, r.err
	}
	if cmd.Stdout != nil {
		cmd.Stdout.Write([]byte(r.out))
	}
	if cmd.Stderr != nil {
		cmd.Stderr.Write([]byte(r.errOut))
	}
	res := executors.Result{ExitCode: r.code, Stdout: []byte(r.out), Stderr: []byte(r.errOut)}
	if r.code != 0 {
		return res, &executors.ExitError{Host: "db", Command: line, ExitCode: r.code, Stderr: strings.TrimSpace(r.errOut)}
	}
	return res, nil
}

// lines lists the commands run, "? " before read-only ones and "! "
// before the ones that change the host.
func (s *scriptedHost) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.ran))
	for i, c := range s.ran {
		mark := "! "
		if c.ReadOnly {
			mark = "? "
		}
		out[i] = mark + cmdLine(c)
	}
	return out
}

// changes lists only the commands that change the host.
func (s *scriptedHost) changes() []string {
	var out []string
	for _, l := range s.lines() {
		if strings.HasPrefix(l, "! ") {
			out = append(out, l)
		}
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s ran:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// runOn is a test Runtime whose host db is ex.
func runOn(ex executors.Executor) *Runtime { return testRuntime(hosts{"db": ex}, nil, nil) }

// hostKindCase drives Check, Describe and Apply of one spec against
// fresh scripted hosts and checks the commands each ran.
type hostKindCase struct {
	name       string
	spec       Spec
	replies    func() []*scriptedReply // fresh replies for each phase
	wantDone   bool
	wantReason string   // substring of the Check reason
	wantCheck  []string // lines of Check
	wantActs   []string // Describe summaries
	wantApply  []string // lines of Apply
	wantErr    string   // Apply fails with this substring
}

func (tt hostKindCase) run(t *testing.T) {
	t.Helper()
	ctx := context.Background()

	h := newScriptedHost(t, tt.replies()...)
	chk, err := tt.spec.Check(ctx, runOn(h))
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	if chk.Done != tt.wantDone || !strings.Contains(chk.Reason, tt.wantReason) {
		t.Errorf("Check = %+v, want Done %v with reason containing %q", chk, tt.wantDone, tt.wantReason)
	}
	if tt.wantCheck != nil {
		wantLines(t, "Check", h.lines(), tt.wantCheck)
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("Check changed the host: %q", c)
	}

	// Describe through ReadOnly, as in a dry run.
	h = newScriptedHost(t, tt.replies()...)
	acts, err := tt.spec.Describe(ctx, runOn(executors.ReadOnly(h)))
	if err != nil {
		t.Fatalf("Describe: %v", err)
	}
	var sums []string
	for _, a := range acts {
		if a.Host != "db" {
			t.Errorf("action %q on host %q, want db", a.Summary, a.Host)
		}
		sums = append(sums, a.Summary)
	}
	if !slices.Equal(sums, tt.wantActs) {
		t.Errorf("Describe:\n  %s\nwant:\n  %s", strings.Join(sums, "\n  "), strings.Join(tt.wantActs, "\n  "))
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("Describe changed the host: %q", c)
	}

	h = newScriptedHost(t, tt.replies()...)
	var streamed bytes.Buffer
	rt := testRuntime(hosts{"db": h}, nil, &streamed)
	out, err := tt.spec.Apply(ctx, rt)
	switch {
	case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
		t.Errorf("Apply error = %v, want one containing %q", err, tt.wantErr)
	case tt.wantErr == "" && err != nil:
		t.Errorf("Apply: %v", err)
	}
	if tt.wantApply != nil {
		wantLines(t, "Apply", h.lines(), tt.wantApply)
	}
	if changed := len(h.changes()) > 0; out.Changed != changed && tt.wantErr == "" {
		t.Errorf("Outcome.Changed = %v, but commands that change the host ran: %v", out.Changed, changed)
	}
	// The dry run shows what Apply runs: every command that changed the
	// host is one Describe listed, as it ran.
	shown := strings.Join(sums, "\n")
	for _, c := range h.changes() {
		if line := strings.TrimPrefix(c, "! "); !strings.Contains(shown, line) {
			t.Errorf("Apply ran %q, which Describe did not show:\n  %s", line, strings.Join(sums, "\n  "))
		}
	}
	// Idempotency: what Check calls done, Apply leaves alone.
	if tt.wantDone && len(h.changes()) > 0 {
		t.Errorf("Check said done, yet Apply ran %q", h.changes())
	}

	// The runner's way: Apply right after Check, handed what the check
	// planned, runs the same commands without probing again.
	if tt.wantErr != "" || tt.wantCheck == nil || tt.wantApply == nil {
		return
	}
	h = newScriptedHost(t, tt.replies()...)
	rt = testRuntime(hosts{"db": h}, nil, &streamed)
	chk, err = tt.spec.Check(ctx, rt)
	if err != nil || chk.Planned == nil {
		return // the kind decides again in Apply
	}
	rt.Checked = chk.Planned
	if _, err := tt.spec.Apply(ctx, rt); err != nil {
		t.Fatalf("Apply after Check: %v", err)
	}
	if !slices.Equal(tt.wantApply[:min(len(tt.wantCheck), len(tt.wantApply))], tt.wantCheck) {
		return // Apply probes differently from Check: nothing to compare
	}
	wantLines(t, "Check, then Apply with what it planned", h.lines(), append(slices.Clone(tt.wantCheck), tt.wantApply[len(tt.wantCheck):]...))
}

// replies wraps a list so each phase gets its own copies (times counts down).
func replies(rs ...*scriptedReply) func() []*scriptedReply {
	return func() []*scriptedReply {
		out := make([]*scriptedReply, len(rs))
		for i, r := range rs {
			c := *r
			out[i] = &c
		}
		return out
	}
}

var hasSystemctl = replyOK("command -v systemctl", "/usr/bin/systemctl\n")

func TestServiceValidate(t *testing.T) {
	tests := []struct {
		name string
		svc  Service
		want []string // "field: message substring"
	}{
		{"started", Service{Name: "ovirt-engine", State: "started"}, nil},
		{"enabled only", Service{Name: "postgresql.service", Enabled: "true"}, nil},
		{"template unit", Service{Name: `getty@tty1.service`, State: "restarted"}, nil},
		{"nothing to do", Service{Name: "x"}, []string{": give state, enabled or both"}},
		{"option-like name", Service{Name: "--all", State: "started"}, []string{"name: not a service name"}},
		{"spaces", Service{Name: "a b", State: "started"}, []string{"name: not a service name"}},
		{"path", Service{Name: "../x", State: "started"}, []string{"name: not a service name"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.svc.Validate(), tt.want) })
	}
}

// checkProblems compares Validate's answer with "field: substring" items.
func checkProblems(t *testing.T, got []Problem, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("Validate() = %v, want %d problem(s) %v", got, len(want), want)
	}
	for i, w := range want {
		field, msg, _ := strings.Cut(w, ": ")
		if got[i].Field != field || !strings.Contains(got[i].Message, msg) {
			t.Errorf("problem %d = %+v, want field %q and message containing %q", i, got[i], field, msg)
		}
	}
}

func TestServiceSystemd(t *testing.T) {
	fast := func(s Service) *Service { s.settle, s.pollEvery = 50*time.Millisecond, time.Millisecond; return &s }
	tests := []hostKindCase{
		{
			name:       "started, already running",
			spec:       fast(Service{Name: "nginx", State: "started"}),
			replies:    replies(hasSystemctl, replyOK("systemctl is-active nginx", "active\n")),
			wantDone:   true,
			wantReason: "nginx is running",
			wantCheck:  []string{"? command -v systemctl", "? systemctl is-active nginx"},
			// Shown, should an earlier step stop it.
			wantActs:  []string{"run on db: systemctl start nginx (only if nginx is not running by then: it runs now)"},
			wantApply: []string{"? command -v systemctl", "? systemctl is-active nginx"},
		},
		{
			name: "started, not running",
			spec: fast(Service{Name: "nginx", State: "started"}),
			replies: replies(hasSystemctl,
				replyOut("systemctl is-active nginx", 3, "inactive\n").once(1),
				replyOK("systemctl is-active nginx", "active\n"),
				replyOK("systemctl start nginx", "")),
			wantReason: "nginx is not running (inactive)",
			wantActs:   []string{"run on db: systemctl start nginx", "then wait up to 50ms for nginx to be running"},
			wantApply: []string{"? command -v systemctl", "? systemctl is-active nginx",
				"! systemctl start nginx", "? systemctl is-active nginx"},
		},
		{
			name:       "stopped, running",
			spec:       fast(Service{Name: "ovirt-engine", State: "stopped"}),
			replies:    replies(hasSystemctl, replyOK("systemctl is-active ovirt-engine", "active\n"), replyOK("systemctl stop ovirt-engine", "")),
			wantReason: "ovirt-engine is running",
			wantActs:   []string{"run on db: systemctl stop ovirt-engine"},
			wantApply:  []string{"? command -v systemctl", "? systemctl is-active ovirt-engine", "! systemctl stop ovirt-engine"},
		},
		{
			name:       "stopped, already stopped",
			spec:       fast(Service{Name: "ovirt-engine", State: "stopped"}),
			replies:    replies(hasSystemctl, replyOut("systemctl is-active ovirt-engine", 3, "failed\n")),
			wantDone:   true,
			wantReason: "ovirt-engine is not running (failed)",
			wantActs:   []string{"run on db: systemctl stop ovirt-engine (only if ovirt-engine runs by then: it does not now)"},
			wantApply:  []string{"? command -v systemctl", "? systemctl is-active ovirt-engine"},
		},
		{
			name:       "restarted always runs",
			spec:       fast(Service{Name: "postgresql", State: "restarted"}),
			replies:    replies(hasSystemctl, replyOK("systemctl restart postgresql", ""), replyOK("systemctl is-active postgresql", "active\n")),
			wantReason: "restart always runs",
			wantCheck:  []string{"? command -v systemctl"},
			wantActs:   []string{"run on db: systemctl restart postgresql", "then wait up to 50ms for postgresql to be running"},
			wantApply:  []string{"? command -v systemctl", "! systemctl restart postgresql", "? systemctl is-active postgresql"},
		},
		{
			name:       "reloaded always runs, no wait",
			spec:       fast(Service{Name: "postgresql", State: "reloaded"}),
			replies:    replies(hasSystemctl, replyOK("systemctl reload postgresql", "")),
			wantReason: "reload always runs",
			wantActs:   []string{"run on db: systemctl reload postgresql"},
			wantApply:  []string{"? command -v systemctl", "! systemctl reload postgresql"},
		},
		{
			name: "started and enabled, both needed: state first",
			spec: fast(Service{Name: "postgresql", State: "started", Enabled: "true"}),
			replies: replies(hasSystemctl,
				replyOut("systemctl is-active postgresql", 3, "inactive\n").once(1),
				replyOK("systemctl is-active postgresql", "active\n"),
				replyOut("systemctl is-enabled postgresql", 1, "disabled\n"),
				replyOK("systemctl start postgresql", ""), replyOK("systemctl enable postgresql", "")),
			wantReason: "postgresql is not running (inactive); postgresql is not enabled at boot (disabled)",
			wantActs: []string{"run on db: systemctl start postgresql", "then wait up to 50ms for postgresql to be running",
				"run on db: systemctl enable postgresql"},
			wantApply: []string{"? command -v systemctl", "? systemctl is-active postgresql", "? systemctl is-enabled postgresql",
				"! systemctl start postgresql", "? systemctl is-active postgresql", "! systemctl enable postgresql"},
		},
		{
			name:       "disable an enabled service",
			spec:       fast(Service{Name: "ovirt-engine", Enabled: "false"}),
			replies:    replies(hasSystemctl, replyOK("systemctl is-enabled ovirt-engine", "enabled\n"), replyOK("systemctl disable ovirt-engine", "")),
			wantReason: "ovirt-engine is enabled at boot (enabled)",
			wantActs:   []string{"run on db: systemctl disable ovirt-engine"},
			wantApply:  []string{"? command -v systemctl", "? systemctl is-enabled ovirt-engine", "! systemctl disable ovirt-engine"},
		},
		{
			// is-enabled exits 0 for a static unit, which disable cannot
			// change: asking again and again would never be done.
			name:       "disable a static unit is done",
			spec:       fast(Service{Name: "tmp.mount", Enabled: "false"}),
			replies:    replies(hasSystemctl, replyOK("systemctl is-enabled tmp.mount", "static\n")),
			wantDone:   true,
			wantReason: "not enabled at boot (static)",
		},
		{
			name:       "manager systemd skips detection",
			spec:       fast(Service{Name: "nginx", State: "started", Manager: "systemd"}),
			replies:    replies(replyOK("systemctl is-active nginx", "active\n")),
			wantDone:   true,
			wantReason: "running",
			wantCheck:  []string{"? systemctl is-active nginx"},
			wantActs:   []string{"run on db: systemctl start nginx (only if nginx is not running by then: it runs now)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

// only_if leaves a service alone where it is not installed (or not
// enabled), and acts as usual where it is.
func TestServiceOnlyIf(t *testing.T) {
	fast := func(s Service) *Service { s.settle, s.pollEvery = 50*time.Millisecond, time.Millisecond; return &s }
	const show = "systemctl show -p LoadState -p UnitFileState ovirt-engine-notifier"
	tests := []hostKindCase{
		{
			name:       "installed: not installed",
			spec:       fast(Service{Name: "ovirt-engine-notifier", State: "stopped", OnlyIf: "installed"}),
			replies:    replies(hasSystemctl, replyOK(show, "LoadState=not-found\nUnitFileState=\n")),
			wantDone:   true,
			wantReason: "ovirt-engine-notifier is not installed: left alone (only_if: installed)",
			wantApply:  []string{"? command -v systemctl", "? " + show},
		},
		{
			name: "installed: installed, disabled, running",
			spec: fast(Service{Name: "ovirt-engine-notifier", State: "stopped", OnlyIf: "installed"}),
			replies: replies(hasSystemctl, replyOK(show, "LoadState=loaded\nUnitFileState=disabled\n"),
				replyOK("systemctl is-active ovirt-engine-notifier", "active\n"), replyOK("systemctl stop ovirt-engine-notifier", "")),
			wantReason: "ovirt-engine-notifier is running",
			wantActs:   []string{"run on db: systemctl stop ovirt-engine-notifier"},
			wantApply: []string{"? command -v systemctl", "? " + show, "? systemctl is-active ovirt-engine-notifier",
				"! systemctl stop ovirt-engine-notifier"},
		},
		{
			name:       "enabled: installed but disabled",
			spec:       fast(Service{Name: "ovirt-engine-notifier", State: "started", OnlyIf: "enabled"}),
			replies:    replies(hasSystemctl, replyOK(show, "LoadState=loaded\nUnitFileState=disabled\n")),
			wantDone:   true,
			wantReason: "not enabled at boot: left alone (only_if: enabled)",
			wantApply:  []string{"? command -v systemctl", "? " + show},
		},
		{
			name:       "enabled: not installed",
			spec:       fast(Service{Name: "ovirt-engine-notifier", State: "started", OnlyIf: "enabled"}),
			replies:    replies(hasSystemctl, replyOK(show, "LoadState=not-found\nUnitFileState=\n")),
			wantDone:   true,
			wantReason: "not installed",
		},
		{
			name: "enabled: enabled and stopped",
			spec: fast(Service{Name: "ovirt-engine-notifier", State: "started", OnlyIf: "enabled"}),
			replies: replies(hasSystemctl, replyOK(show, "LoadState=loaded\nUnitFileState=enabled\n"),
				replyOut("systemctl is-active ovirt-engine-notifier", 3, "inactive\n").once(1),
				replyOK("systemctl is-active ovirt-engine-notifier", "active\n"),
				replyOK("systemctl start ovirt-engine-notifier", "")),
			wantReason: "is not running (inactive)",
			wantActs:   []string{"run on db: systemctl start ovirt-engine-notifier", "then wait up to 50ms for ovirt-engine-notifier to be running"},
		},
		{
			name: "sysv: installed, not enabled (chkconfig)",
			spec: fast(Service{Name: "ovirt-engine-notifier", State: "started", OnlyIf: "enabled", Manager: "sysv"}),
			replies: replies(replyOK("test -x /etc/init.d/ovirt-engine-notifier", ""),
				replyOK("command -v chkconfig", "/sbin/chkconfig\n"), replyFail("chkconfig ovirt-engine-notifier", 1, "")),
			wantDone:   true,
			wantReason: "not enabled at boot: left alone",
		},
		{
			name:       "sysv: no init script",
			spec:       fast(Service{Name: "ovirt-engine-notifier", State: "stopped", OnlyIf: "installed", Manager: "sysv"}),
			replies:    replies(replyFail("test -x /etc/init.d/ovirt-engine-notifier", 1, "")),
			wantDone:   true,
			wantReason: "not installed",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestServiceSysV(t *testing.T) {
	hasService := replyOK("command -v service", "/sbin/service\n")
	tests := []hostKindCase{
		{
			name: "auto falls back to service; chkconfig",
			spec: &Service{Name: "postgresql", State: "started", Enabled: "true", settle: time.Second, pollEvery: time.Millisecond},
			replies: replies(hasService, replyOK("command -v chkconfig", "/sbin/chkconfig\n"),
				replyFail("service postgresql status", 3, "postgresql is stopped").once(1),
				replyOK("service postgresql status", "running"),
				replyOK("chkconfig postgresql on", ""), replyFail("chkconfig postgresql", 1, ""), replyOK("service postgresql start", "")),
			wantReason: "postgresql is not running; postgresql is not enabled at boot",
			wantActs: []string{"run on db: service postgresql start", "then wait up to 1s for postgresql to be running",
				"run on db: chkconfig postgresql on"},
			wantApply: []string{"? command -v systemctl", "? command -v service", "? service postgresql status",
				"? command -v chkconfig", "? chkconfig postgresql",
				"! service postgresql start", "? service postgresql status", "! chkconfig postgresql on"},
		},
		{
			name: "update-rc.d",
			spec: &Service{Name: "postgresql", Enabled: "false", Manager: "sysv"},
			replies: replies(replyOK("command -v update-rc.d", "/usr/sbin/update-rc.d\n"),
				replyOK("ls /etc/rc[2345].d/S[0-9][0-9]postgresql", ""), replyOK("update-rc.d postgresql disable", "")),
			wantReason: "postgresql is enabled at boot",
			wantActs:   []string{"run on db: update-rc.d postgresql disable"},
			wantApply: []string{"? command -v chkconfig", "? command -v update-rc.d",
				"? ls /etc/rc[2345].d/S[0-9][0-9]postgresql >/dev/null 2>&1", "! update-rc.d postgresql disable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestServiceNoManager(t *testing.T) {
	h := newScriptedHost(t)
	_, err := (&Service{Name: "x", State: "started"}).Check(context.Background(), runOn(h))
	if err == nil || !strings.Contains(err.Error(), "neither systemctl nor service") || !strings.Contains(err.Error(), "on db") {
		t.Errorf("Check error = %v, want neither systemctl nor service ... on db", err)
	}
	h = newScriptedHost(t, replyOK("command -v service", ""))
	_, err = (&Service{Name: "x", Enabled: "true"}).Check(context.Background(), runOn(h))
	if err == nil || !strings.Contains(err.Error(), "neither chkconfig nor update-rc.d") {
		t.Errorf("Check error = %v, want neither chkconfig nor update-rc.d", err)
	}
}

// TestServiceStartFails: a service that never becomes active fails the
// step with its status, and the probe's exit error stays reachable.
func TestServiceStartFails(t *testing.T) {
	h := newScriptedHost(t, hasSystemctl,
		replyOut("systemctl is-active ovirt-engine", 3, "failed\n"),
		replyOK("systemctl start ovirt-engine", ""),
		replyOut("systemctl status ovirt-engine --no-pager -n 20", 3, "● ovirt-engine.service\n   Active: failed (Result: exit-code)\nJava heap space\n"))
	s := &Service{Name: "ovirt-engine", State: "started", settle: 30 * time.Millisecond, pollEvery: 5 * time.Millisecond}
	_, err := s.Apply(context.Background(), runOn(h))
	if err == nil {
		t.Fatal("Apply succeeded, want failure")
	}
	for _, w := range []string{"service ovirt-engine on db", "not running (failed)", "systemctl status ovirt-engine --no-pager -n 20", "Java heap space"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 3 {
		t.Errorf("error %v: want an *ExitError with code 3 reachable", err)
	}
	lines := h.lines()
	if n := strings.Count(strings.Join(lines, "\n"), "is-active"); n < 3 {
		t.Errorf("polled is-active %d times, want several: %q", n, lines)
	}
	if lines[len(lines)-1] != "? systemctl status ovirt-engine --no-pager -n 20" {
		t.Errorf("last command %q, want the status", lines[len(lines)-1])
	}
}

// TestServiceCommandFails: the failing command's ExitError is reachable
// and the message names the step, the service and the host.
func TestServiceCommandFails(t *testing.T) {
	h := newScriptedHost(t, hasSystemctl, replyOut("systemctl is-active x", 3, "inactive"),
		replyFail("systemctl start x", 5, "Failed to start x.service: Unit x.service not found."))
	_, err := (&Service{Name: "x", State: "started"}).Apply(context.Background(), runOn(h))
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 5 {
		t.Fatalf("Apply error = %v, want an *ExitError with code 5", err)
	}
	if !strings.HasPrefix(err.Error(), "service x on db: ") || !strings.Contains(err.Error(), "not found") {
		t.Errorf("error %q does not name the service and host, or lost stderr", err)
	}
}

// TestServiceDryRun: through a ReadOnly executor, Check and Describe work
// and Apply is refused before anything changes.
func TestServiceDryRun(t *testing.T) {
	h := newScriptedHost(t, hasSystemctl, replyOut("systemctl is-active nginx", 3, "inactive"))
	rt := runOn(executors.ReadOnly(h))
	rt.DryRun = true
	s := &Service{Name: "nginx", State: "started"}
	if chk, err := s.Check(context.Background(), rt); err != nil || chk.Done {
		t.Fatalf("Check = %+v, %v; want not done", chk, err)
	}
	if _, err := s.Describe(context.Background(), rt); err != nil {
		t.Fatalf("Describe: %v", err)
	}
	if _, err := s.Apply(context.Background(), rt); !errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly: err = %v, want ErrDryRun", err)
	}
	if c := h.changes(); len(c) > 0 {
		t.Errorf("dry run changed the host: %q", c)
	}
}

// TestServiceOffline: without a host, Describe still says what the step
// is for, and passes the error on.
func TestServiceOffline(t *testing.T) {
	rt := testRuntime(hosts{}, nil, nil)
	acts, err := (&Service{Name: "nginx", State: "started", Enabled: "true"}).Describe(context.Background(), rt)
	if err == nil || len(acts) != 1 || acts[0].Summary != "make nginx started, enable it at boot (commands chosen on the host)" {
		t.Errorf("Describe = %+v, %v; want the intent and an error", acts, err)
	}
}

// TestServiceBecome: probes and commands all run as the step's become
// user, and Describe says so.
func TestServiceBecome(t *testing.T) {
	h := newScriptedHost(t, hasSystemctl, replyOut("systemctl is-active x", 3, "inactive").once(3),
		replyOK("systemctl is-active x", "active"), replyOK("systemctl start x", ""))
	rt := runOn(h)
	rt.Become = "root"
	s := &Service{Name: "x", State: "started", settle: time.Second, pollEvery: time.Millisecond}
	acts, err := s.Describe(context.Background(), rt)
	if err != nil || len(acts) == 0 || acts[0].Summary != "run on db as root: systemctl start x" {
		t.Errorf("Describe = %+v, %v; want run on db as root: systemctl start x", acts, err)
	}
	if _, err := s.Apply(context.Background(), rt); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, c := range h.ran {
		if c.Become != "root" {
			t.Errorf("%s ran as %q, want root", cmdLine(c), c.Become)
		}
	}
	wantLines(t, "Describe and Apply", h.lines(), []string{"? command -v systemctl", "? systemctl is-active x",
		"? command -v systemctl", "? systemctl is-active x", "! systemctl start x", "? systemctl is-active x", "? systemctl is-active x"})
}

// fakeSystemctl is a stand-in systemctl that keeps the unit's state in
// files next to it and logs every call.
const fakeSystemctl = `#!/bin/sh
dir=$(dirname "$0")
echo "$*" >> "$dir/calls"
state=$(cat "$dir/state" 2>/dev/null || echo inactive)
boot=$(cat "$dir/boot" 2>/dev/null || echo disabled)
case "$1" in
is-active) echo "$state"; [ "$state" = active ] ;;
is-enabled) echo "$boot"; [ "$boot" = enabled ] ;;
start|restart) echo active > "$dir/state" ;;
stop) echo inactive > "$dir/state" ;;
enable) echo enabled > "$dir/boot"; echo "Created symlink for $2." ;;
disable) echo disabled > "$dir/boot" ;;
status) echo "$2 - $state"; exit 3 ;;
*) echo "unexpected $*" >&2; exit 2 ;;
esac
`

func TestServiceLocalSystemctl(t *testing.T) {
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "systemctl"), []byte(fakeSystemctl), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	var out bytes.Buffer
	rt := testRuntime(hosts{"db": executors.NewLocal("db")}, nil, &out)
	s := &Service{Name: "ovirt-engine", State: "started", Enabled: "true"}
	ctx := context.Background()

	chk, err := s.Check(ctx, rt)
	if err != nil || chk.Done || chk.Reason != "ovirt-engine is not running (inactive); ovirt-engine is not enabled at boot (disabled)" {
		t.Fatalf("Check = %+v, %v; want not done, inactive and disabled", chk, err)
	}
	res, err := s.Apply(ctx, rt)
	if err != nil || !res.Changed {
		t.Fatalf("Apply = %+v, %v; want changed", res, err)
	}
	if !strings.Contains(res.Output, "Created symlink") || !strings.Contains(out.String(), "Created symlink") {
		t.Errorf("Output %q / streamed %q: want systemctl enable's output", res.Output, out.String())
	}
	chk, err = s.Check(ctx, rt)
	if err != nil || !chk.Done {
		t.Fatalf("Check after Apply = %+v, %v; want done", chk, err)
	}
	calls, _ := os.ReadFile(filepath.Join(bin, "calls"))
	want := "is-active ovirt-engine\nis-enabled ovirt-engine\n" + // Check
		"is-active ovirt-engine\nis-enabled ovirt-engine\nstart ovirt-engine\nis-active ovirt-engine\nenable ovirt-engine\n" + // Apply
		"is-active ovirt-engine\nis-enabled ovirt-engine\n" // Check
	if string(calls) != want {
		t.Errorf("systemctl calls:\n%s\nwant:\n%s", calls, want)
	}
}
