package executors

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrun/migrun/executors/sshtest"
)

// TestSSHShellKeepsCommandsApart: commands in the connection's shell see
// no state of the ones before, and their output, exit status and stderr
// are theirs exactly, whatever they print.
func TestSSHShellKeepsCommandsApart(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	ctx := t.Context()
	tests := []struct {
		name           string
		cmd            Command
		stdout, stderr string
		code           int
	}{
		{"no trailing newline", Command{Argv: []string{"printf", "abc"}}, "abc", "", 0},
		{"newlines kept", Command{Argv: []string{"printf", "a\n\n"}}, "a\n\n", "", 0},
		{"a marker with another token", Command{Script: `printf '\n\036migrun-done 0123456789abcdef 0\nafter'`}, "\n\x1emigrun-done 0123456789abcdef 0\nafter", "", 0},
		{"exit leaves the shell alone", Command{Script: "echo out; echo err >&2; exit 3"}, "out\n", "err\n", 3},
		{"cd stays in its command", Command{Script: "cd /; pwd"}, "/\n", "", 0},
		{"no cd from before", Command{Argv: []string{"sh", "-c", `[ "$PWD" != / ] && echo home`}}, "home\n", "", 0},
		{"set -e and variables stay inside", Command{Script: "X=1; set -e; false"}, "", "", 1},
		{"no variable from before", Command{Script: `echo "${X:-unset}"`}, "unset\n", "", 0},
		{"stdin is empty", Command{Argv: []string{"cat"}}, "", "", 0},
		{"env and dir", Command{Argv: []string{"sh", "-c", `echo "$A $(pwd)"`}, Env: map[string]string{"A": "x y"}, Dir: "/tmp"}, "x y /tmp\n", "", 0},
		{"large output (the result keeps its tail)", Command{Argv: []string{"head", "-c", "300000", "/dev/zero"}}, strings.Repeat("\x00", OutputTail), "", 0},
	}
	for _, tc := range tests {
		res, err := s.Run(ctx, tc.cmd)
		var ee *ExitError
		switch {
		case tc.code == 0 && err != nil, tc.code != 0 && (!errors.As(err, &ee) || ee.ExitCode != tc.code):
			t.Errorf("%s: err %v, want exit %d", tc.name, err, tc.code)
		}
		if string(res.Stdout) != tc.stdout || string(res.Stderr) != tc.stderr || res.ExitCode != tc.code {
			t.Errorf("%s: stdout %q stderr %q exit %d; want %q %q %d", tc.name, trim(res.Stdout), res.Stderr, res.ExitCode, trim([]byte(tc.stdout)), tc.stderr, tc.code)
		}
	}
	if s.shell == nil {
		t.Error("the commands did not run in the connection's shell")
	}
	// A caller's writer gets the whole stream, marker excluded.
	var all bytes.Buffer
	if _, err := s.Run(ctx, Command{Argv: []string{"head", "-c", "300000", "/dev/urandom"}, Stdout: &all}); err != nil || all.Len() != 300000 {
		t.Errorf("streamed %d bytes (%v), want 300000", all.Len(), err)
	}
}

func trim(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "..."
	}
	return string(b)
}

// TestSSHShellCancelAndConcurrency: a cancelled command takes the shell
// down and the next command gets a new one; commands run at the same time
// as one in the shell go to sessions of their own.
func TestSSHShellCancelAndConcurrency(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Run(ctx, Command{Argv: []string{"sleep", "30"}}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled command: err %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("cancel took %v", d)
	}
	if res, err := s.Run(t.Context(), Command{Argv: []string{"echo", "again"}}); err != nil || string(res.Stdout) != "again\n" {
		t.Fatalf("after a cancel: %q %v", res.Stdout, err)
	}

	var wg sync.WaitGroup
	outs := make([][]byte, 6)
	for i := range outs {
		wg.Go(func() {
			res, err := s.Run(t.Context(), Command{Script: "sleep 0.2; echo " + strings.Repeat("x", i+1)})
			if err != nil {
				t.Error(err)
			}
			outs[i] = res.Stdout
		})
	}
	wg.Wait()
	for i, o := range outs {
		if want := strings.Repeat("x", i+1) + "\n"; !bytes.Equal(o, []byte(want)) {
			t.Errorf("concurrent command %d: %q, want %q", i, o, want)
		}
	}
}

// TestSSHShellStartsAtDial: the shell is started, and has run a first
// command, by the time the connection's warm-up ends, before any Run; the
// Runs after use it and open no session of their own.
func TestSSHShellStartsAtDial(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	select {
	case <-s.warmed:
	case <-time.After(30 * time.Second):
		t.Fatal("the shell's warm-up did not end")
	}
	if s.shell == nil {
		t.Fatal("no shell after the warm-up")
	}
	if got := f.srv.Execs(); len(got) != 1 || got[0] != "exec /bin/sh" {
		t.Fatalf("exec requests after dial: %q, want the shell only", got)
	}
	for i := range 3 {
		if res, err := s.Run(t.Context(), Command{Argv: []string{"echo", "hi"}}); err != nil || string(res.Stdout) != "hi\n" {
			t.Fatalf("run %d: %q %v", i, res.Stdout, err)
		}
	}
	if got := f.srv.Execs(); len(got) != 1 {
		t.Errorf("exec requests after three Runs: %q, want the shell's only", got)
	}
}

// TestSSHShellStdin: a short text stdin held in memory reaches the command
// byte for byte through the shell (a here-document: no session opened);
// any other stdin reaches it byte for byte through a session of its own.
func TestSSHShellStdin(t *testing.T) {
	f := newSSHFixture(t, sshtest.Options{})
	s := f.dial(t, f.config(t))
	ctx := t.Context()
	pipe := func(text string) io.Reader {
		r, w := io.Pipe()
		go func() { w.Write([]byte(text)); w.Close() }()
		return r
	}
	big := strings.Repeat("select 1;\n", maxShellStdin/10+1)
	tests := []struct {
		name    string
		stdin   io.Reader
		want    string
		session bool
		secret  bool
	}{
		{"a script", strings.NewReader("SELECT '$HOME `id` \\n';\n\tEND\nEOF\n"), "SELECT '$HOME `id` \\n';\n\tEND\nEOF\n", false, false},
		{"bytes", bytes.NewReader([]byte("a\n\nb\n")), "a\n\nb\n", false, false},
		{"empty", strings.NewReader(""), "", false, false},
		{"no newline at the end", strings.NewReader("abc"), "abc", true, false},
		{"a NUL", strings.NewReader("a\x00b\n"), "a\x00b\n", true, false},
		{"a line like the delimiter", strings.NewReader(heredocPrefix + "0123456789abcdef\nafter\n"), heredocPrefix + "0123456789abcdef\nafter\n", true, false},
		{"a pipe", pipe("from a pipe\n"), "from a pipe\n", true, false},
		{"too long", strings.NewReader(big), big, true, false},
		{"a secret", strings.NewReader("ALTER ROLE r PASSWORD 'x';\n"), "ALTER ROLE r PASSWORD 'x';\n", true, true},
	}
	<-s.warmed
	for _, tc := range tests {
		before := len(f.srv.Execs())
		var out bytes.Buffer
		if _, err := s.Run(ctx, Command{Argv: []string{"cat"}, Stdin: tc.stdin, SecretStdin: tc.secret, Stdout: &out}); err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if out.String() != tc.want {
			t.Errorf("%s: stdout %q, want %q", tc.name, trim(out.Bytes()), trim([]byte(tc.want)))
		}
		if session := len(f.srv.Execs()) > before; session != tc.session {
			t.Errorf("%s: ran in a session of its own: %v, want %v", tc.name, session, tc.session)
		}
	}
}
