package executors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"regexp"
	"strings"
	"sync"
)

// Fact is one piece of host state a step's check read: a file's contents,
// its mode and owner, the output of a probe such as `systemctl is-active`
// or a PostgreSQL catalog query. A reviewed plan keeps the facts its checks
// saw, and applying it re-reads them to refuse a host that changed since.
//
// A Fact never holds a secret or a hash of one: contents are scrubbed of
// the plan's secret values and of password assignments before hashing, and
// probes whose output derives from a secret are not fingerprinted.
type Fact struct {
	Host string `json:"host"`
	// What names the state: "file /etc/x", "stat /etc/x", "run: ...",
	// or a probe's own description.
	What string `json:"what"`
	// SHA256 fingerprints the state ("" when Unstable says why not).
	SHA256 string `json:"sha256,omitempty"`
	// Value is a short readable form of small, non-file state ("active",
	// "missing", "file 0644 0:0 size 12"), for drift messages.
	Value string `json:"value,omitempty"`
	// Unstable says why this state is not compared (it changes on its
	// own, or it derives from a secret).
	Unstable string `json:"unstable,omitempty"`
}

// Key identifies the state a fact describes, whatever its value.
func (f Fact) Key() string { return f.Host + "\x00" + f.What }

// Recording collects the facts read through the executors it wraps, and
// the commands and writes they made (the audit of what actually ran).
// Scrub, when set, removes secret values from contents before hashing.
type Recording struct {
	Scrub func(string) string

	mu    sync.Mutex
	facts []Fact
	ran   []string
	cmds  []RanCommand
}

// RanCommand is a command that changes a host, as a Recording saw it run:
// what a dry run must have shown (see Commands).
type RanCommand struct {
	Host   string
	Argv   []string
	Script string
}

// Shown is the command as a dry run shows it: its argv quoted, or the
// first line of its script.
func (c RanCommand) Shown() string {
	if c.Script != "" {
		line, _, _ := strings.Cut(strings.TrimSpace(c.Script), "\n")
		return line
	}
	return QuoteArgv(c.Argv)
}

// Wrap returns e recording into r.
func (r *Recording) Wrap(e Executor) Executor { return &recorder{e: e, rec: r} }

// Facts returns what was read, in order, one entry per state (the last
// reading wins when a check reads the same state twice).
func (r *Recording) Facts() []Fact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Fact(nil), r.facts...)
}

// Commands lists the commands run that change a host (not the probes),
// in order.
func (r *Recording) Commands() []RanCommand {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]RanCommand(nil), r.cmds...)
}

// Ran lists the commands and writes made, as shown to users (secrets masked).
func (r *Recording) Ran() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.ran...)
}

func (r *Recording) add(f Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.facts {
		if r.facts[i].Key() == f.Key() {
			r.facts[i] = f
			return
		}
	}
	r.facts = append(r.facts, f)
}

func (r *Recording) did(host, what string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ran = append(r.ran, host+": "+what)
}

// passwordAssignment matches shell-style and properties-style assignments
// of passwords and secrets (ENGINE_DB_PASSWORD="...", password = ...), whose
// values are replaced before a file is hashed: a hash of a file whose only
// unknown part is a password would let anyone holding the reviewed plan
// test guesses against it.
var passwordAssignment = regexp.MustCompile(`(?im)^(\s*(?:export\s+)?[A-Za-z0-9_.\-]*(?:password|passwd|secret)[A-Za-z0-9_.\-]*\s*[=:]).*$`)

func (r *Recording) scrub(b []byte) []byte {
	s := string(b)
	if r.Scrub != nil {
		s = r.Scrub(s)
	}
	return []byte(passwordAssignment.ReplaceAllString(s, "${1}<scrubbed>"))
}

func digest(parts ...[]byte) string {
	h := sha256.New()
	for _, p := range parts {
		fmt.Fprintf(h, "%d:", len(p))
		h.Write(p)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// shortValue keeps small one-line states readable in drift messages.
func shortValue(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 64 || strings.ContainsAny(s, "\n\r") {
		return ""
	}
	return s
}

type recorder struct {
	e   Executor
	rec *Recording
}

func (r *recorder) Name() string { return r.e.Name() }
func (r *recorder) Close() error { return r.e.Close() }

// stdinLimit bounds what is kept of a probe's stdin to name it: probes
// take a query or two on stdin, never bulk data.
const stdinLimit = 1 << 20

func (r *recorder) Run(ctx context.Context, cmd Command) (Result, error) {
	if !cmd.ReadOnly {
		r.rec.did(r.e.Name(), displayCommand(cmd))
		r.rec.mu.Lock()
		r.rec.cmds = append(r.rec.cmds, RanCommand{Host: r.e.Name(), Argv: append([]string(nil), cmd.Argv...), Script: cmd.Script})
		r.rec.mu.Unlock()
		return r.e.Run(ctx, cmd)
	}
	what := cmd.Fact
	if what == "" {
		what = "run: " + displayCommand(cmd)
		if cmd.Become != "" {
			what += " (as " + cmd.Become + ")"
		}
		if cmd.Stdin != nil {
			// The same command line with another query on stdin reads
			// other state: name it by a hash of its input.
			in, err := io.ReadAll(io.LimitReader(cmd.Stdin, stdinLimit))
			if err != nil {
				return Result{}, fmt.Errorf("%s: read stdin of %s: %w", r.e.Name(), displayCommand(cmd), err)
			}
			// A longer input is named by its first stdinLimit bytes but
			// reaches the command whole.
			cmd.Stdin = io.MultiReader(bytes.NewReader(in), cmd.Stdin)
			what += " <stdin " + digest(r.rec.scrub(in))[:12] + ">"
		}
	}
	res, err := r.e.Run(ctx, cmd)
	var exit *ExitError
	if err != nil && !errors.As(err, &exit) {
		return res, err // no answer, no fact: the error stops the check
	}
	f := Fact{Host: r.e.Name(), What: what, Unstable: cmd.Unstable}
	if f.Unstable == "" {
		status := fmt.Sprintf("exit %d", res.ExitCode)
		out := r.rec.scrub(res.Stdout)
		f.SHA256 = digest([]byte(status), out)
		if v := shortValue(out); v != "" || len(bytes.TrimSpace(out)) == 0 {
			f.Value = strings.TrimSpace(v + " (" + status + ")")
		}
	}
	r.rec.add(f)
	return res, err
}

func statValue(fi FileInfo) string {
	kind := "file"
	switch {
	case fi.IsDir():
		kind = "directory"
	case fi.Mode&fs.ModeSymlink != 0:
		kind = "symlink"
	case !fi.Mode.IsRegular():
		kind = "special file"
	}
	// No size: contents are fingerprinted by ReadFile and Checksum, and
	// the size of a file holding a password tells the password's length.
	return fmt.Sprintf("%s %04o owner %d:%d", kind, fi.Mode.Perm(), fi.UID, fi.GID)
}

// fileFact records the answer of a file operation: a missing file is a
// state like any other, other errors record nothing.
func (r *recorder) fileFact(what string, err error, value string, sum string) {
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return
		}
		value, sum = "missing", ""
	}
	if sum == "" {
		sum = digest([]byte(value))
	}
	r.rec.add(Fact{Host: r.e.Name(), What: what, SHA256: sum, Value: value})
}

func (r *recorder) Stat(ctx context.Context, p string) (FileInfo, error) {
	fi, err := r.e.Stat(ctx, p)
	r.fileFact("stat "+p, err, statValue(fi), "")
	return fi, err
}

func (r *recorder) ReadDir(ctx context.Context, p string) ([]FileInfo, error) {
	list, err := r.e.ReadDir(ctx, p)
	// Names and types only: the entries' own state is their own facts.
	var b strings.Builder
	for _, fi := range list {
		fmt.Fprintf(&b, "%s\t%v\n", fi.Name, fi.Mode.Type())
	}
	r.fileFact("directory "+p, err, fmt.Sprintf("%d entries", len(list)), digest([]byte(b.String())))
	return list, err
}

func (r *recorder) ReadFile(ctx context.Context, p string) ([]byte, error) {
	data, err := r.e.ReadFile(ctx, p)
	r.fileFact("file "+p, err, "", digest(r.rec.scrub(data)))
	return data, err
}

func (r *recorder) Checksum(ctx context.Context, p string) (string, error) {
	sum, err := r.e.Checksum(ctx, p)
	r.fileFact("checksum "+p, err, "", sum)
	return sum, err
}

// Open is for streaming (a copy's source); its contents are fingerprinted
// by Checksum where a check needs them.
func (r *recorder) Open(ctx context.Context, p string) (ReadFile, error) {
	return r.e.Open(ctx, p)
}

func (r *recorder) WriteFile(ctx context.Context, p string, data []byte, attrs FileAttrs) error {
	r.rec.did(r.e.Name(), fmt.Sprintf("write %s (%d bytes)", p, len(data)))
	return r.e.WriteFile(ctx, p, data, attrs)
}

func (r *recorder) OpenWriter(ctx context.Context, p string, offset int64) (WriteFile, error) {
	r.rec.did(r.e.Name(), fmt.Sprintf("write %s from offset %d", p, offset))
	return r.e.OpenWriter(ctx, p, offset)
}

func (r *recorder) Rename(ctx context.Context, from, to string) error {
	r.rec.did(r.e.Name(), "rename "+from+" to "+to)
	return r.e.Rename(ctx, from, to)
}

func (r *recorder) Remove(ctx context.Context, p string) error {
	r.rec.did(r.e.Name(), "remove "+p)
	return r.e.Remove(ctx, p)
}

func (r *recorder) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	r.rec.did(r.e.Name(), fmt.Sprintf("mkdir -p -m %04o %s", perm, p))
	return r.e.MkdirAll(ctx, p, perm)
}

func (r *recorder) SetAttrs(ctx context.Context, p string, attrs FileAttrs) error {
	r.rec.did(r.e.Name(), fmt.Sprintf("set attributes of %s (%04o %s:%s)", p, attrs.Mode, attrs.Owner, attrs.Group))
	return r.e.SetAttrs(ctx, p, attrs)
}

// Unwrap returns the wrapped executor.
func (r *recorder) Unwrap() Executor { return r.e }
