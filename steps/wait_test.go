package steps

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
)

func TestWaitValidate(t *testing.T) {
	tests := []struct {
		name string
		w    Wait
		want []string
	}{
		{"tcp", Wait{TCP: "db.example.com:5432"}, nil},
		{"tcp v6", Wait{TCP: "[::1]:5432", Timeout: "90s", Interval: "1s"}, nil},
		{"http", Wait{HTTP: "http://localhost/ovirt-engine/services/health"}, nil},
		{"https insecure", Wait{HTTP: "https://engine/ovirt-engine/", Insecure: true}, nil},
		{"command", Wait{Command: "pg_isready -q"}, nil},
		{"nothing", Wait{}, []string{": give what to wait for"}},
		{"two", Wait{TCP: "a:1", HTTP: "http://a/"}, []string{"http: only one of tcp, http and command (got tcp, http)"}},
		{"no port", Wait{TCP: "db"}, []string{"tcp: want HOST:PORT"}},
		{"bad port", Wait{TCP: "db:99999"}, []string{"tcp: port \"99999\" is not a number"}},
		{"shell in host", Wait{TCP: "a;b:1"}, []string{"tcp: is not a host name"}},
		{"ftp", Wait{HTTP: "ftp://a/"}, []string{"http: want an http:// or https:// URL"}},
		{"no host", Wait{HTTP: "http:///x"}, []string{"http: has no host"}},
		{"insecure http", Wait{HTTP: "http://a/", Insecure: true}, []string{"insecure: only means something for an https://"}},
		{"blank command", Wait{Command: "  "}, []string{"command: blank"}},
		{"bad durations", Wait{TCP: "a:1", Timeout: "5", Interval: "-1s"},
			[]string{"timeout: not a positive Go duration", "interval: not a positive Go duration"}},
		{"interval over timeout", Wait{TCP: "a:1", Timeout: "1s", Interval: "2s"}, []string{"interval: 2s is longer than the timeout 1s"}},
		{"interval over default timeout", Wait{TCP: "a:1", Interval: "10m"}, []string{"interval: 10m0s is longer than the timeout 5m0s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.w.Validate(), tt.want) })
	}
}

const (
	healthURL = "http://localhost/ovirt-engine/services/health"
	curlLine  = "curl -sS -o /dev/null -w '%{http_code}' --max-time 10 "
)

var hasCurl = replyOK("command -v curl", "/usr/bin/curl\n")

func TestWaitScripted(t *testing.T) {
	tests := []hostKindCase{
		{
			name:       "http ready now",
			spec:       &Wait{HTTP: healthURL},
			replies:    replies(hasCurl, replyOK("curl", "200")),
			wantDone:   true,
			wantReason: "ready now: HTTP 200",
			// Describe does not depend on the state: the runner asks it
			// only when the step is not done.
			wantActs:  []string{"run on db: " + curlLine + healthURL + " (every 2s until it answers 200-399, for up to 5m0s)"},
			wantCheck: []string{"? command -v curl", "? " + curlLine + healthURL},
			wantApply: []string{"? command -v curl", "? " + curlLine + healthURL},
		},
		{
			name:       "http ready on the third try",
			spec:       &Wait{HTTP: healthURL, Interval: "1ms"},
			replies:    replies(hasCurl, replyOK("curl", "503").once(1), replyFail("curl", 7, "curl: (7) Failed to connect").once(1), replyOK("curl", "302")),
			wantReason: "not ready yet: HTTP 503",
			wantActs:   []string{"run on db: " + curlLine + healthURL + " (every 1ms until it answers 200-399, for up to 5m0s)"},
			wantApply: []string{"? command -v curl", "? " + curlLine + healthURL, "? " + curlLine + healthURL,
				"? " + curlLine + healthURL},
		},
		{
			name:       "https insecure with wget",
			spec:       &Wait{HTTP: "https://engine/ovirt-engine/", Insecure: true, Timeout: "20ms", Interval: "15ms"},
			replies:    replies(replyOK("command -v wget", ""), replyFail("wget", 5, "ERROR: cannot verify certificate")),
			wantReason: "not ready yet: exit status 5: ERROR: cannot verify certificate",
			wantActs: []string{"run on db: wget -q -O /dev/null -T 1 --no-check-certificate https://engine/ovirt-engine/" +
				" (every 15ms until it answers 200-399, for up to 20ms)"},
			wantErr: "not ready after 20ms (",
		},
		{
			name:       "tcp with bash",
			spec:       &Wait{TCP: "db.example.com:5432", Timeout: "20ms", Interval: "10ms"},
			replies:    replies(replyOK("command -v bash", ""), replyFail("timeout 1 bash", 1, "bash: connect: Connection refused")),
			wantReason: "not ready yet: exit status 1: bash: connect: Connection refused",
			wantCheck:  []string{"? command -v bash", "? timeout 1 bash -c 'exec 3<>/dev/tcp/db.example.com/5432'"},
			wantActs: []string{"run on db: timeout 1 bash -c 'exec 3<>/dev/tcp/db.example.com/5432'" +
				" (every 10ms until it succeeds, for up to 20ms)"},
			wantErr: "not ready after 20ms",
		},
		{
			name:       "tcp with nc when there is no bash",
			spec:       &Wait{TCP: "[::1]:5432", Timeout: "5s"},
			replies:    replies(replyOK("command -v nc", ""), replyOK("nc -z", "")),
			wantDone:   true,
			wantReason: "ready now: succeeded",
			wantCheck:  []string{"? command -v bash", "? command -v nc", "? nc -z -w 5 ::1 5432"},
			wantActs:   []string{"run on db: nc -z -w 5 ::1 5432 (every 2s until it succeeds, for up to 5s)"},
		},
		{
			name:       "command",
			spec:       &Wait{Command: "pg_isready -q", Interval: "1ms"},
			replies:    replies(replyFail("pg_isready", 2, "").once(1), replyOK("pg_isready", "")),
			wantReason: "not ready yet: exit status 2",
			wantCheck:  []string{"? pg_isready -q"},
			wantActs:   []string{"run on db: pg_isready -q (every 1ms until it succeeds, for up to 5m0s)"},
			wantApply:  []string{"? pg_isready -q", "? pg_isready -q"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, tt.run)
	}
}

func TestWaitTimeout(t *testing.T) {
	h := newScriptedHost(t, hasCurl, replyOK("curl", "503"))
	w := &Wait{HTTP: healthURL, Timeout: "60ms", Interval: "20ms"}
	start := time.Now()
	out, err := w.Apply(context.Background(), runOn(h))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Apply took %s, want about 60ms", took)
	}
	if err == nil || !strings.Contains(err.Error(), "not ready after 60ms") || !strings.Contains(err.Error(), "last try: HTTP 503") ||
		!strings.HasPrefix(err.Error(), "wait for "+healthURL+" to answer 200-399 on db: ") {
		t.Errorf("Apply error = %v, want a timeout naming the target, host and last answer", err)
	}
	if out.Changed || out.Output != "HTTP 503" {
		t.Errorf("Outcome = %+v, want unchanged with the last answer", out)
	}
	if n := len(h.lines()); n < 3 {
		t.Errorf("tried %d times in 60ms every 20ms, want at least 3 commands: %q", n, h.lines())
	}
}

// TestWaitTimeoutExitError: the last try's exit error stays reachable,
// with its stdout in the message.
func TestWaitTimeoutExitError(t *testing.T) {
	h := newScriptedHost(t, &scriptedReply{prefix: "check-db", code: 4, out: "replica lag 30s", errOut: "not yet"})
	_, err := (&Wait{Command: "check-db", Timeout: "20ms", Interval: "5ms"}).Apply(context.Background(), runOn(h))
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 4 {
		t.Fatalf("Apply error = %v, want an *ExitError with code 4", err)
	}
	if !strings.Contains(err.Error(), "replica lag 30s") || !strings.Contains(err.Error(), "not yet") {
		t.Errorf("error %q lacks the last try's output", err)
	}
}

func TestWaitCancel(t *testing.T) {
	h := newScriptedHost(t, hasCurl, replyOK("curl", "503"))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := (&Wait{HTTP: healthURL, Interval: "10s"}).Apply(ctx, runOn(h))
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("Apply took %s after a cancel at 50ms", took)
	}
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted after 1 try") {
		t.Errorf("Apply error = %v, want an interruption wrapping context.Canceled", err)
	}
}

func TestWaitDryRun(t *testing.T) {
	h := newScriptedHost(t, hasCurl, replyOK("curl", "503"))
	rt := runOn(executors.ReadOnly(h))
	w := &Wait{HTTP: healthURL}
	if chk, err := w.Check(context.Background(), rt); err != nil || chk.Done {
		t.Errorf("Check = %+v, %v; want not done", chk, err)
	}
	// Waiting writes nothing: even Apply passes a read-only executor.
	w.Timeout, w.Interval = "10ms", "5ms"
	if _, err := w.Apply(context.Background(), rt); errors.Is(err, executors.ErrDryRun) {
		t.Errorf("Apply through ReadOnly was refused: %v", err)
	}
	for _, l := range h.lines() {
		if !strings.HasPrefix(l, "? ") {
			t.Errorf("not read-only: %s", l)
		}
	}
}

func TestWaitOffline(t *testing.T) {
	acts, err := (&Wait{TCP: "db:5432"}).Describe(context.Background(), testRuntime(hosts{}, nil, nil))
	if err == nil || len(acts) != 1 || acts[0].Summary != "wait up to 5m0s for tcp db:5432 to accept a connection, trying every 2s" {
		t.Errorf("Describe = %+v, %v; want the intent and an error", acts, err)
	}
}

// freePort returns a port nothing listens on (for a moment).
func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestWaitTCPLocal probes real ports from the local host.
func TestWaitTCPLocal(t *testing.T) {
	ctx := context.Background()
	rt := testRuntime(hosts{"db": executors.NewLocal("db")}, nil, nil)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	open := &Wait{TCP: l.Addr().String()}
	if chk, err := open.Check(ctx, rt); err != nil || !chk.Done {
		t.Errorf("Check of a listening port = %+v, %v; want done", chk, err)
	}

	closed := &Wait{TCP: freePort(t), Timeout: "300ms", Interval: "50ms"}
	if chk, err := closed.Check(ctx, rt); err != nil || chk.Done || !strings.Contains(chk.Reason, "not ready yet") {
		t.Errorf("Check of a closed port = %+v, %v; want not ready", chk, err)
	}
	_, err = closed.Apply(ctx, rt)
	var exit *executors.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "not ready after 300ms") {
		t.Errorf("Apply on a closed port: %v, want a timeout with the probe's exit error", err)
	}

	// A port that opens while Apply waits.
	later := freePort(t)
	time.AfterFunc(200*time.Millisecond, func() {
		if l, err := net.Listen("tcp", later); err == nil {
			t.Cleanup(func() { l.Close() })
		}
	})
	out, err := (&Wait{TCP: later, Timeout: "10s", Interval: "50ms"}).Apply(ctx, rt)
	if err != nil || out.Changed || !strings.Contains(out.Output, "ready after") {
		t.Errorf("Apply = %+v, %v; want ready, unchanged", out, err)
	}
}

// TestWaitHangingCommand: a try that does not finish counts as failed
// once the timeout is up; it cannot hold the step beyond it.
func TestWaitHangingCommand(t *testing.T) {
	rt := testRuntime(hosts{"db": executors.NewLocal("db")}, nil, nil)
	start := time.Now()
	_, err := (&Wait{Command: "sleep 30", Timeout: "1s", Interval: "100ms"}).Apply(context.Background(), rt)
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("Apply took %s with a 1s timeout", took)
	}
	if err == nil || !strings.Contains(err.Error(), "no answer within") {
		t.Errorf("Apply error = %v, want no answer within ...", err)
	}
}
