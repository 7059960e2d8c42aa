package pg

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// pg_restore: its command line, and its stderr read as it streams into
// errors judged harmless or not. pg_restore, pg_stream and pg_replicate's
// schema copy share them.

// RestoreArgv is a pg_restore command line into t's database. file ""
// reads the archive from standard input (pg_stream).
func RestoreArgv(t Target, jobs int, noOwner bool, role string, clean bool, file string) []string {
	argv := append([]string{"pg_restore", "-d", t.Database}, t.ConnArgv()...)
	if jobs > 1 {
		argv = append(argv, "-j", strconv.Itoa(jobs))
	}
	if noOwner {
		argv = append(argv, "--no-owner")
	}
	if role != "" {
		argv = append(argv, "--role="+role)
	}
	if clean {
		argv = append(argv, "--clean", "--if-exists")
	}
	if file != "" {
		argv = append(argv, file)
	}
	return argv
}

// restoreOptions speed up the restore session (field notes): index and
// constraint builds dominate, and nothing is lost by not waiting for each
// commit's WAL flush, since an interrupted restore is redone anyway.
var restoreOptions = []string{"-c maintenance_work_mem=512MB", "-c synchronous_commit=off"}

// RestoreCommand runs pg_restore argv as t's OS user with restoreOptions.
func RestoreCommand(t Target, argv []string) executors.Command {
	return t.ClientCommand(argv, false, restoreOptions...)
}

// defaultHarmless are the pg_restore errors that leave a complete restore:
// the target already has the extension (CREATE EXTENSION IF NOT EXISTS
// succeeded) but the restoring role does not own it, so it cannot comment
// on it; and the public schema that every new database already has.
var defaultHarmless = []struct {
	re   *regexp.Regexp
	desc string
}{
	{regexp.MustCompile(`must be owner of extension (plpgsql|uuid-ossp)\b`), "must be owner of extension plpgsql/uuid-ossp"},
	{regexp.MustCompile(`schema "public" already exists`), `schema "public" already exists`},
	{regexp.MustCompile(`(?m)^Command was: COMMENT ON EXTENSION `), "errors of COMMENT ON EXTENSION"},
}

// HarmlessDescriptions names the accepted errors for a dry run: the
// defaults, then the allow_errors patterns.
func HarmlessDescriptions(allow []string) []string {
	var d []string
	for _, h := range defaultHarmless {
		d = append(d, h.desc)
	}
	for _, a := range allow {
		d = append(d, "/"+a+"/")
	}
	return d
}

// HarmlessPatterns compiles the accepted error patterns, defaults first.
func HarmlessPatterns(allow []string) ([]*regexp.Regexp, error) {
	var res []*regexp.Regexp
	for _, h := range defaultHarmless {
		res = append(res, h.re)
	}
	for _, a := range allow {
		re, err := regexp.Compile(a)
		if err != nil {
			return nil, fmt.Errorf("allow_errors %q: %w", a, err)
		}
		res = append(res, re)
	}
	return res, nil
}

// RestoreError is one error pg_restore reported.
type RestoreError struct {
	Entry   string // "from TOC entry 215; 1259 16386 TABLE t engine", if given
	Message string // "could not execute query: ERROR:  role \"engine\" does not exist" (+ DETAIL/HINT lines)
	Command string // the first line of "Command was: ..."
}

// text is what the harmless patterns are matched against.
func (e RestoreError) text() string {
	s := e.Message
	if e.Command != "" {
		s += "\nCommand was: " + e.Command
	}
	return s
}

func (e RestoreError) String() string {
	s := e.Message
	if e.Entry != "" {
		s = e.Entry + ": " + s
	}
	if e.Command != "" {
		s += "\nCommand was: " + e.Command
	}
	return s
}

// RestoreLog parses pg_restore's stderr as it streams, keeping every
// error (with its TOC entry and command) and the count pg_restore reports
// at the end. pg_restore 15 writes:
//
//	pg_restore: while PROCESSING TOC:
//	pg_restore: from TOC entry 215; 1259 16386 TABLE t engine
//	pg_restore: error: could not execute query: ERROR:  role "engine" does not exist
//	Command was: ALTER TABLE public.t OWNER TO engine;
//	pg_restore: warning: errors ignored on restore: 1
type RestoreLog struct {
	mu       sync.Mutex
	lines    hostcmd.LineSplitter
	entry    string
	cur      *RestoreError // the error whose continuation lines may follow
	inCmd    bool          // cur's "Command was:" started: further lines are its SQL
	errors   []RestoreError
	reported int // "errors ignored on restore: N"
}

func (p *RestoreLog) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines.Feed(b, p.lineBytes)
	return len(b), nil
}

func (p *RestoreLog) lineBytes(b []byte) { p.line(strings.TrimSuffix(string(b), "\n")) }

// Close parses a last line that had no newline; Result does it too.
func (p *RestoreLog) Close() error {
	p.flush()
	return nil
}

// flush parses a last line that had no newline.
func (p *RestoreLog) flush() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines.Flush(p.lineBytes)
	p.end()
}

const (
	restorePrefix   = "pg_restore: "
	restoreErrorPfx = "pg_restore: error: "
	restoreEntryPfx = "pg_restore: from TOC entry "
	restoreIgnored  = "pg_restore: warning: errors ignored on restore: "
	restoreCmdPfx   = "Command was: "
)

// maxContinuation bounds the DETAIL/HINT lines kept per error.
const maxContinuation = 4

func (p *RestoreLog) line(l string) {
	l = strings.TrimRight(l, "\r")
	switch {
	case strings.HasPrefix(l, restoreErrorPfx):
		p.end()
		p.cur = &RestoreError{Entry: p.entry, Message: strings.TrimPrefix(l, restoreErrorPfx)}
		p.entry = ""
	case strings.HasPrefix(l, restoreEntryPfx):
		p.end()
		p.entry = strings.TrimPrefix(l, restorePrefix)
	case strings.HasPrefix(l, restoreIgnored):
		p.end()
		p.reported, _ = strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, restoreIgnored)))
	case strings.HasPrefix(l, restorePrefix):
		p.end() // "while PROCESSING TOC:", warnings, progress
	case p.cur == nil:
	case strings.HasPrefix(l, restoreCmdPfx):
		p.cur.Command = strings.TrimPrefix(l, restoreCmdPfx)
		p.inCmd = true
	case l == "" || p.inCmd:
		// The blank line that ends an error, or the rest of a multi-line
		// command: the first line identifies it well enough.
	case strings.Count(p.cur.Message, "\n") < maxContinuation:
		p.cur.Message += "\n" + l // DETAIL:, HINT:, LINE 1: ...
	}
}

// end closes the error being read, if any.
func (p *RestoreLog) end() {
	if p.cur != nil {
		p.errors = append(p.errors, *p.cur)
		p.cur, p.inCmd = nil, false
	}
}

// RestoreReport is the classification of one restore's errors.
type RestoreReport struct {
	Accepted map[string]int // harmless errors by first message line
	Failures []RestoreError
	Unparsed int // errors pg_restore counted that no error line matched
}

// classify splits the errors into accepted and failures. When pg_restore
// counted more errors than were parsed, the difference counts as failed:
// an error not understood is not an error known to be harmless.
func (p *RestoreLog) Classify(harmless []*regexp.Regexp) RestoreReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	rep := RestoreReport{Accepted: map[string]int{}}
	for _, e := range p.errors {
		ok := false
		for _, re := range harmless {
			if re.MatchString(e.text()) {
				ok = true
				break
			}
		}
		if ok {
			first, _, _ := strings.Cut(e.Message, "\n")
			rep.Accepted[first]++
		} else {
			rep.Failures = append(rep.Failures, e)
		}
	}
	// The count covers errors of the query phase only ("ignored"); fatal
	// errors come on top, so only a larger count reveals a missed line.
	if n := p.reported - len(p.errors); n > 0 {
		rep.Unparsed = n
		rep.Failures = append(rep.Failures, RestoreError{Message: fmt.Sprintf("%d more errors counted by pg_restore that migrun could not read; see the output", n)})
	}
	return rep
}

// result flushes the parser and judges a finished pg_restore: runErr is
// what Run returned. A run that did not end by itself (cancelled,
// connection lost) is its own error; errors not known to be harmless fail
// it, with advice, the last line, saying what to do next.
func (p *RestoreLog) Result(runErr error, harmless []*regexp.Regexp, advice string) (RestoreReport, error) {
	p.flush()
	var exit *executors.ExitError
	if runErr != nil && !errors.As(runErr, &exit) {
		return RestoreReport{}, runErr
	}
	report := p.Classify(harmless)
	switch {
	case len(report.Failures) > 0:
		return report, report.Err(advice)
	case runErr != nil && report.Total() == 0:
		// A non-zero exit with no error line at all: nothing to classify,
		// so nothing to call harmless.
		return report, fmt.Errorf("pg_restore failed: %w", runErr)
	}
	return report, nil
}

// maxListed is how many failing errors an error message lists.
const maxListed = 5

// Err lists the failures, then the advice line.
func (rep RestoreReport) Err(advice string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "pg_restore reported %s not known to be harmless", hostcmd.Plural(len(rep.Failures), "error", "errors"))
	if n := rep.Total(); n > len(rep.Failures) {
		fmt.Fprintf(&b, " (of %d)", n)
	}
	b.WriteString(":")
	for i, e := range rep.Failures {
		if i == maxListed {
			fmt.Fprintf(&b, "\n  … and %d more", len(rep.Failures)-maxListed)
			break
		}
		b.WriteString("\n  - " + strings.ReplaceAll(e.String(), "\n", "\n    "))
	}
	for _, e := range rep.Failures {
		if missingRoleRE.MatchString(e.Message) {
			b.WriteString("\nhint: create the archive's roles on the target first (CREATE ROLE), or restore with no_owner: true")
			break
		}
	}
	b.WriteString("\n" + advice)
	return errors.New(b.String())
}

var missingRoleRE = regexp.MustCompile(`role ".*" does not exist`)

func (rep RestoreReport) Total() int {
	n := len(rep.Failures)
	for _, c := range rep.Accepted {
		n += c
	}
	return n
}

// AcceptedNote is "\naccepted as harmless: ..." naming the errors accepted
// and how often, or "" when there were none.
func (rep RestoreReport) AcceptedNote() string {
	if len(rep.Accepted) == 0 {
		return ""
	}
	msgs := make([]string, 0, len(rep.Accepted))
	for m, c := range rep.Accepted {
		msgs = append(msgs, fmt.Sprintf("%s (×%d)", m, c))
	}
	sort.Strings(msgs)
	return "\naccepted as harmless: " + strings.Join(msgs, "; ")
}

// RestoreNarration classifies pg_restore -v's lines: each archive item
// restored counts one; the narration is dropped; errors, warnings and
// their context stay for the classifier and the output. With -j the
// workers write to one pipe a piece at a time, so one line may hold
// several messages: each "pg_restore: " in it is looked at.
func RestoreNarration(l string) (count, drop bool) {
	if !strings.Contains(l, restorePrefix) {
		return false, false
	}
	n, keep := 0, !strings.HasPrefix(l, restorePrefix)
	for _, msg := range strings.Split(l, restorePrefix)[1:] {
		switch {
		case hasAnyPrefix(msg, "creating ", "processing data for table ", "executing ", "setting owner and privileges for "):
			n++
		case hasAnyPrefix(msg, "error: ", "warning: ", "from TOC entry ", "while ", "detail: ", "hint: "):
			keep = true
		}
	}
	return n > 0, !keep
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
