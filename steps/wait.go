package steps

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

var waitKind = Kind{
	Name:      "wait",
	Summary:   "wait until a TCP port accepts, a URL answers or a command succeeds, tried from a host",
	NeedsHost: true,
	New:       func() Spec { return new(Wait) },
}

var _ Spec = (*Wait)(nil)

// Wait waits for something on or seen from the step's host to be ready:
// a TCP port that accepts connections, a URL that answers (the engine's
// http://localhost/ovirt-engine/services/health after a start), or any
// command that exits 0. It tries every interval until timeout. Waiting
// changes nothing, so every try is a read-only command and a dry run
// tries once.
type Wait struct {
	TCP      string `yaml:"tcp" doc:"HOST:PORT that must accept a TCP connection, tried from the step's host (bash /dev/tcp, else nc -z)"`
	HTTP     string `yaml:"http" doc:"http:// or https:// URL that must answer with a status from 200 to 399, fetched on the step's host with curl (else wget)"`
	Command  string `yaml:"command" doc:"shell command that must exit 0; it must change nothing, since the dry run runs it too"`
	Insecure bool   `yaml:"insecure" doc:"for an https URL: do not verify the server's certificate (curl -k)"`
	Timeout  string `yaml:"timeout" default:"5m" doc:"how long to keep trying in all, a Go duration such as 90s"`
	Interval string `yaml:"interval" default:"2s" doc:"pause between two tries, a Go duration"`
}

const (
	defaultWaitTimeout  = 5 * time.Minute
	defaultWaitInterval = 2 * time.Second
	// waitTryMax bounds one try of tcp or http: a port that silently drops
	// packets would otherwise hold a try for the kernel's minutes.
	waitTryMax = 10 * time.Second
)

// waitHost is what may stand before :PORT in tcp: a name or an address.
// It is pasted into a shell line, so nothing else gets through.
var waitHost = regexp.MustCompile(`^[A-Za-z0-9_:][A-Za-z0-9_.:-]*$`)

// Validate checks that exactly one target is given and well formed, and
// the durations.
func (w *Wait) Validate() []Problem {
	var ps []Problem
	var given []string
	for _, t := range []struct{ key, val string }{{"tcp", w.TCP}, {"http", w.HTTP}, {"command", w.Command}} {
		if t.val != "" {
			given = append(given, t.key)
		}
	}
	switch len(given) {
	case 0:
		ps = append(ps, Problem{"", "give what to wait for: tcp: HOST:PORT, http: URL or command: \"...\""})
	case 1:
	default:
		ps = append(ps, Problem{given[1], "give only one of tcp, http and command (got " + strings.Join(given, ", ") + ")"})
	}
	if w.TCP != "" {
		if _, _, err := splitTCP(w.TCP); err != nil {
			ps = append(ps, Problem{"tcp", err.Error()})
		}
	}
	if w.HTTP != "" {
		u, err := url.Parse(w.HTTP)
		switch {
		case err != nil:
			ps = append(ps, Problem{"http", fmt.Sprintf("%q is not a URL: %v", w.HTTP, err)})
		case u.Scheme != "http" && u.Scheme != "https":
			ps = append(ps, Problem{"http", fmt.Sprintf("%q: want an http:// or https:// URL", w.HTTP)})
		case u.Host == "":
			ps = append(ps, Problem{"http", fmt.Sprintf("%q has no host", w.HTTP)})
		}
	}
	if w.Insecure && !strings.HasPrefix(w.HTTP, "https://") {
		ps = append(ps, Problem{"insecure", "only means something for an https:// URL in http"})
	}
	if w.Command != "" && strings.TrimSpace(w.Command) == "" {
		ps = append(ps, Problem{"command", "the command is blank"})
	}
	timeout, terr := hostcmd.PositiveDuration(w.Timeout, defaultWaitTimeout)
	if terr != nil {
		ps = append(ps, Problem{"timeout", terr.Error()})
	}
	interval, ierr := hostcmd.PositiveDuration(w.Interval, defaultWaitInterval)
	if ierr != nil {
		ps = append(ps, Problem{"interval", ierr.Error()})
	}
	if terr == nil && ierr == nil && interval > timeout {
		ps = append(ps, Problem{"interval", fmt.Sprintf("%s is longer than the timeout %s", interval, timeout)})
	}
	return ps
}

// splitTCP reads HOST:PORT ([v6]:PORT for IPv6 addresses).
func splitTCP(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q: want HOST:PORT", s)
	}
	if !waitHost.MatchString(host) {
		return "", 0, fmt.Errorf("%q: %q is not a host name or address", s, host)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 1 to 65535", s, port)
	}
	return host, n, nil
}

// durations are the timeout and the interval, defaults applied. Validate
// has vouched for them.
func (w *Wait) durations() (timeout, interval time.Duration) {
	timeout, _ = hostcmd.PositiveDuration(w.Timeout, defaultWaitTimeout)
	interval, _ = hostcmd.PositiveDuration(w.Interval, defaultWaitInterval)
	return timeout, interval
}

// Hosts is the step's host, which the tries run on.
func (w *Wait) Hosts(stepHost string) []string { return []string{stepHost} }

// target names what is waited for, for messages.
func (w *Wait) target() string {
	switch {
	case w.TCP != "":
		return "tcp " + w.TCP + " to accept a connection"
	case w.HTTP != "":
		return w.HTTP + " to answer 200-399"
	}
	return "`" + hostcmd.OneLine(w.Command) + "` to exit 0"
}

// waitTry is one try: the read-only command and how to read its result.
type waitTry struct {
	cmd executors.Command
	// judge says whether a finished try succeeded, with a note for
	// messages ("HTTP 503", the command's output).
	judge func(hostcmd.Result) (bool, string)
	// limit bounds one try; 0 leaves it to the whole timeout.
	limit time.Duration
}

// try builds the command for one try. perTry bounds tcp and http tries
// (in whole seconds: the tools take no less).
func (w *Wait) try(ctx context.Context, h *hostSession, perTry time.Duration) (waitTry, error) {
	secs := strconv.Itoa(max(1, int((perTry+time.Second-1)/time.Second)))
	switch {
	case w.TCP != "":
		host, port, _ := splitTCP(w.TCP)
		tool, err := h.First(ctx, "bash", "nc")
		if err != nil {
			return waitTry{}, err
		}
		var argv []string
		switch tool {
		case "bash":
			// bash's /dev/tcp is on every RHEL and Debian host, where
			// nc may be missing or lack -z (older ncat). The host is
			// checked to hold no shell syntax.
			argv = []string{"timeout", secs, "bash", "-c", "exec 3<>/dev/tcp/" + host + "/" + strconv.Itoa(port)}
		case "nc":
			argv = []string{"nc", "-z", "-w", secs, host, strconv.Itoa(port)}
		default:
			return waitTry{}, errors.New("neither bash nor nc found: cannot try tcp " + w.TCP)
		}
		return waitTry{cmd: executors.Command{Argv: argv}, judge: waitJudgeExit, limit: perTry}, nil
	case w.HTTP != "":
		tool, err := h.First(ctx, "curl", "wget")
		if err != nil {
			return waitTry{}, err
		}
		switch tool {
		case "curl":
			// No -f and no -L: curl exits 0 for any answer and prints
			// its status, which decides; a redirect counts as an answer.
			argv := []string{"curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", secs}
			if w.Insecure {
				argv = append(argv, "-k")
			}
			return waitTry{cmd: executors.Command{Argv: append(argv, w.HTTP)}, judge: waitJudgeCurl, limit: perTry}, nil
		case "wget":
			// wget exits 0 only for a 2xx at the end of the redirects.
			argv := []string{"wget", "-q", "-O", "/dev/null", "-T", secs}
			if w.Insecure {
				argv = append(argv, "--no-check-certificate")
			}
			return waitTry{cmd: executors.Command{Argv: append(argv, w.HTTP)}, judge: waitJudgeExit, limit: perTry}, nil
		}
		return waitTry{}, errors.New("neither curl nor wget found: cannot fetch " + w.HTTP)
	}
	return waitTry{cmd: executors.Command{Script: w.Command}, judge: waitJudgeExit}, nil
}

func waitJudgeExit(r hostcmd.Result) (bool, string) {
	if r.OK() {
		return true, "succeeded"
	}
	note := fmt.Sprintf("exit status %d", r.ExitCode)
	// Stderr says why when there is one (curl's stdout is then "000").
	out := strings.TrimSpace(string(r.Stderr))
	if out == "" {
		out = strings.TrimSpace(string(r.Stdout))
	}
	if out != "" {
		// Reasons are one line.
		note += ": " + strings.Join(strings.Fields(executors.LastBytes(out, 1<<10)), " ")
	}
	return false, note
}

func waitJudgeCurl(r hostcmd.Result) (bool, string) {
	if !r.OK() {
		return waitJudgeExit(r)
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(r.Stdout)))
	if err != nil {
		return false, fmt.Sprintf("curl printed %q, not an HTTP status", r.Stdout)
	}
	return code >= 200 && code < 400, "HTTP " + strconv.Itoa(code)
}

// attempt runs one try within limit. A try the limit cut short failed;
// only the caller's ctx ending is an error.
func (w *Wait) attempt(ctx context.Context, h *hostSession, t waitTry, limit time.Duration) (ok bool, note string, r hostcmd.Result, err error) {
	tctx, cancel := ctx, context.CancelFunc(func() {})
	if limit > 0 {
		// The tools enforce their own limit; this one catches a command:
		// that hangs, and a host where they do not apply.
		tctx, cancel = context.WithTimeout(ctx, limit)
	}
	defer cancel()
	r, err = h.Probe(tctx, t.cmd)
	if err != nil {
		if ctx.Err() == nil && tctx.Err() != nil {
			return false, fmt.Sprintf("no answer within %s", limit), r, nil
		}
		return false, "", r, err
	}
	ok, note = t.judge(r)
	return ok, note, r, nil
}

// Check tries once: done when the target is ready now.
func (w *Wait) Check(ctx context.Context, rt *Runtime) (Check, error) {
	h, err := openHost(ctx, rt, "wait for "+w.target())
	if err != nil {
		return Check{}, err
	}
	timeout, _ := w.durations()
	perTry := min(timeout, waitTryMax)
	t, err := w.try(ctx, h, perTry)
	if err != nil {
		return Check{}, h.wrap(err)
	}
	ok, note, _, err := w.attempt(ctx, h, t, tryLimit(t, perTry))
	if err != nil {
		return Check{}, h.wrap(err)
	}
	if ok {
		return Check{Done: true, Reason: "ready now: " + note}, nil
	}
	return Check{Reason: "not ready yet: " + note}, nil
}

// tryLimit is the context bound of one try: the tool's own limit plus
// slack for the command to start and report, or perTry for a command:.
func tryLimit(t waitTry, perTry time.Duration) time.Duration {
	if t.limit > 0 {
		return t.limit + 5*time.Second
	}
	return perTry
}

// Describe shows the command tried and for how long.
func (w *Wait) Describe(ctx context.Context, rt *Runtime) ([]Action, error) {
	timeout, interval := w.durations()
	intent := fmt.Sprintf("wait up to %s for %s, trying every %s", timeout, w.target(), interval)
	h, err := openHost(ctx, rt, "wait for "+w.target())
	if err != nil {
		return []Action{{Host: rt.Host, Summary: intent}}, err
	}
	t, err := w.try(ctx, h, min(timeout, waitTryMax))
	if err != nil {
		return []Action{{Host: rt.Host, Summary: intent}}, h.wrap(err)
	}
	note := fmt.Sprintf("every %s until it ", interval)
	if w.HTTP != "" {
		note += "answers 200-399"
	} else {
		note += "succeeds"
	}
	note += fmt.Sprintf(", for up to %s", timeout)
	return []Action{h.action(hostcmd.Cmd{Cmd: t.cmd, Note: note})}, nil
}

// Apply tries until the target is ready, the timeout passes or ctx ends.
// The timeout error carries the last try's output, and its
// *executors.ExitError when it had one.
func (w *Wait) Apply(ctx context.Context, rt *Runtime) (Outcome, error) {
	h, err := openHost(ctx, rt, "wait for "+w.target())
	if err != nil {
		return Outcome{}, err
	}
	timeout, interval := w.durations()
	start := time.Now()
	deadline := start.Add(timeout)
	t, err := w.try(ctx, h, min(timeout, waitTryMax))
	if err != nil {
		return Outcome{}, h.wrap(err)
	}
	for n := 1; ; n++ {
		// The last try gets only what is left of the timeout.
		left := max(time.Until(deadline), time.Second)
		ok, note, r, err := w.attempt(ctx, h, t, min(tryLimit(t, left), left+5*time.Second))
		if err != nil {
			return Outcome{}, h.wrap(err)
		}
		if ok {
			took := time.Since(start).Round(time.Millisecond)
			return Outcome{Output: fmt.Sprintf("ready after %s (%s): %s", took, hostcmd.Plural(n, "try", "tries"), note)}, nil
		}
		if !time.Now().Before(deadline) {
			tries := hostcmd.Plural(n, "try", "tries")
			if r.Exit == nil {
				return Outcome{Output: note}, h.wrap(fmt.Errorf("not ready after %s (%s); last try: %s", timeout, tries, note))
			}
			// The exit error holds stderr; stdout may be what says why.
			var out string
			if s := strings.TrimSpace(string(r.Stdout)); s != "" {
				out = "; its output: " + executors.LastBytes(s, 1<<10)
			}
			return Outcome{Output: note}, h.wrap(fmt.Errorf("not ready after %s (%s); last try: %w%s", timeout, tries, r.Exit, out))
		}
		if err := hostcmd.Sleep(ctx, min(interval, time.Until(deadline))); err != nil {
			return Outcome{Output: note}, h.wrap(fmt.Errorf("interrupted after %s; last try: %s: %w", hostcmd.Plural(n, "try", "tries"), note, err))
		}
	}
}

// VerifiesOnly: this kind changes no host (see Verifier).
func (*Wait) VerifiesOnly() {}
