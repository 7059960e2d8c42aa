package executors

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLocal(t *testing.T) {
	testExecutor(t, func(t *testing.T) Executor { return NewLocal("here") })
}

// TestLocalBecome puts fake sudo and su first on PATH; each records its
// argv and runs the shell line it was given, so the test checks both the
// exact wrapping and that Env and Dir survive it.
func TestLocalBecome(t *testing.T) {
	bin := fakeBecomeBin(t)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	dir := t.TempDir()
	line := "cd " + dir + " && env 'A=x y' sh -c 'printf %s-%s \"$A\" \"$PWD\"'"
	tests := []struct {
		method string
		want   []string
	}{
		{"", []string{"sudo", "-n", "-u", "postgres", "--", "sh", "-c", line}},
		{"sudo", []string{"sudo", "-n", "-u", "postgres", "--", "sh", "-c", line}},
		{"su", []string{"su", "-", "postgres", "-c", line}},
	}
	for _, tt := range tests {
		os.Remove(filepath.Join(bin, "log"))
		l := NewLocal("here")
		l.BecomeMethod = tt.method
		res, err := l.Run(t.Context(), Command{
			Argv:   []string{"sh", "-c", `printf %s-%s "$A" "$PWD"`},
			Env:    map[string]string{"A": "x y"},
			Dir:    dir,
			Become: "postgres",
		})
		if err != nil {
			t.Fatalf("%q: %v", tt.method, err)
		}
		if got := string(res.Stdout); got != "x y-"+dir {
			t.Errorf("%q: output %q", tt.method, got)
		}
		if got := readFakeLog(t, bin); !slices.Equal(got, tt.want) {
			t.Errorf("%q: ran\n %q\nwant\n %q", tt.method, got, tt.want)
		}
	}

	l := NewLocal("here")
	l.BecomeMethod = "doas"
	if _, err := l.Run(t.Context(), Command{Argv: []string{"true"}, Become: "root"}); err == nil {
		t.Error("unknown become method accepted")
	}
}

// readFakeLog returns the argv (program name first) that the fake sudo or
// su recorded.
func readFakeLog(t *testing.T, bin string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bin, "log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n\n"), "\n")
}

func fakeBecomeBin(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	log := filepath.Join(bin, "log")
	// Each fake appends its argv (one word per line, then a blank line) to
	// log and runs the last argument with sh, as the target user would.
	script := "#!/bin/sh\n{ echo \"$(basename \"$0\")\"; for a in \"$@\"; do printf '%s\\n' \"$a\"; done; echo; } >>" + log + "\n" +
		"for last in \"$@\"; do :; done\nexec sh -c \"$last\"\n"
	for _, name := range []string{"sudo", "su"} {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func TestLocalCancelKillsGroup(t *testing.T) {
	// The shell backgrounds a child that would outlive a kill of the shell
	// alone; the whole process group must go.
	marker := filepath.Join(t.TempDir(), "survived")
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := NewLocal("here").Run(ctx, Command{Script: "(sleep 1; touch " + marker + ") & wait"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := os.Stat(marker); err == nil {
		t.Error("a child of the cancelled command survived")
	}
}

func TestLocalSignalExitCode(t *testing.T) {
	_, err := NewLocal("here").Run(t.Context(), Command{Script: "kill -9 $$"})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.ExitCode != 137 {
		t.Errorf("err = %v, want exit status 137", err)
	}
	if !strings.Contains(err.Error(), "here: ") {
		t.Errorf("error %q lacks the host", err)
	}
}
