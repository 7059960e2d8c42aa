package executors

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrun/migrun/internal/secret"
)

// testExecutor is the conformance suite every Executor must pass. The hosts
// under test share the test's file system (Local, or the in-process SSH
// server), so the suite prepares and checks files with package os.
func testExecutor(t *testing.T, newExec func(t *testing.T) Executor) {
	run := func(name string, f func(t *testing.T, e Executor, ctx context.Context)) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newExec(t)
			t.Cleanup(func() { e.Close() })
			f(t, e, t.Context())
		})
	}

	run("RunArgv", func(t *testing.T, e Executor, ctx context.Context) {
		res, err := e.Run(ctx, Command{Argv: []string{"printf", "%s|%s", "a b", "it's"}})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.Stdout); got != "a b|it's" {
			t.Errorf("stdout = %q", got)
		}
		if res.ExitCode != 0 || res.Duration <= 0 {
			t.Errorf("exit code %d, duration %v", res.ExitCode, res.Duration)
		}
	})

	run("RunScriptStdin", func(t *testing.T, e Executor, ctx context.Context) {
		res, err := e.Run(ctx, Command{
			Script: "tr a-z A-Z\necho done >&2",
			Stdin:  strings.NewReader("secret on stdin"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.Stdout); got != "SECRET ON STDIN" {
			t.Errorf("stdout = %q", got)
		}
		if got := string(res.Stderr); got != "done\n" {
			t.Errorf("stderr = %q", got)
		}
	})

	run("Env", func(t *testing.T, e Executor, ctx context.Context) {
		res, err := e.Run(ctx, Command{
			Argv: []string{"sh", "-c", `printf '%s/%s' "$ONE" "$TWO"`},
			Env:  map[string]string{"ONE": "a b'c", "TWO": "$HOME"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if got := string(res.Stdout); got != "a b'c/$HOME" {
			t.Errorf("stdout = %q", got)
		}
	})

	run("Dir", func(t *testing.T, e Executor, ctx context.Context) {
		dir := filepath.Join(t.TempDir(), "with space")
		mustMkdir(t, dir)
		for _, cmd := range []Command{
			{Argv: []string{"pwd"}, Dir: dir},
			{Script: "pwd", Dir: dir},
		} {
			res, err := e.Run(ctx, cmd)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != dir {
				t.Errorf("%v: pwd = %q, want %q", cmd, got, dir)
			}
		}
	})

	run("ExitError", func(t *testing.T, e Executor, ctx context.Context) {
		res, err := e.Run(ctx, Command{Script: "echo starting; echo 'it broke' >&2; exit 3"})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("err = %v (%T), want *ExitError", err, err)
		}
		if ee.ExitCode != 3 || res.ExitCode != 3 {
			t.Errorf("exit codes %d, %d, want 3", ee.ExitCode, res.ExitCode)
		}
		if ee.Host != e.Name() || ee.Stderr != "it broke" || !strings.Contains(ee.Command, "exit 3") {
			t.Errorf("ExitError = %+v", ee)
		}
		if string(res.Stdout) != "starting\n" {
			t.Errorf("stdout = %q", res.Stdout)
		}
		if !strings.HasPrefix(err.Error(), e.Name()+": ") {
			t.Errorf("error %q does not start with the host name", err)
		}
	})

	run("ExitErrorStderrBounded", func(t *testing.T, e Executor, ctx context.Context) {
		_, err := e.Run(ctx, Command{Script: "i=0; while [ $i -lt 500 ]; do echo line $i >&2; i=$((i+1)); done; exit 1"})
		var ee *ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("err = %v", err)
		}
		if len(ee.Stderr) > 2100 || !strings.HasSuffix(ee.Stderr, "line 499") {
			t.Errorf("stderr tail of %d bytes, ends %q", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-20):])
		}
	})

	run("OutputStreamsAndTail", func(t *testing.T, e Executor, ctx context.Context) {
		// The command waits on stdin after its first line; the test only
		// closes stdin once that line has reached the writer, so the test
		// passes only if output is streamed while the command runs.
		pr, pw := io.Pipe()
		seen := make(chan struct{})
		var once sync.Once
		var stdout bytes.Buffer
		w := writerFunc(func(p []byte) (int, error) {
			stdout.Write(p)
			if bytes.Contains(stdout.Bytes(), []byte("first\n")) {
				once.Do(func() { close(seen) })
			}
			return len(p), nil
		})
		go func() {
			select {
			case <-seen:
			case <-time.After(10 * time.Second):
			}
			pw.Close()
		}()
		res, err := e.Run(ctx, Command{
			Script: "echo first; cat >/dev/null; head -c 100000 /dev/zero | tr '\\0' x; printf END",
			Stdin:  pr,
			Stdout: w,
		})
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-seen:
		default:
			t.Fatal("first line never reached the Stdout writer")
		}
		if stdout.Len() != len("first\n")+100000+3 {
			t.Errorf("writer got %d bytes", stdout.Len())
		}
		if len(res.Stdout) != OutputTail || !bytes.HasSuffix(res.Stdout, []byte("xxxEND")) {
			t.Errorf("Result.Stdout: %d bytes ending %q", len(res.Stdout), res.Stdout[max(0, len(res.Stdout)-6):])
		}
	})

	run("SharedOutputWriter", func(t *testing.T, e Executor, ctx context.Context) {
		var buf bytes.Buffer // not safe for concurrent use: Run must serialise
		_, err := e.Run(ctx, Command{
			Script: "for i in 1 2 3 4 5 6 7 8 9; do echo out$i; echo err$i >&2; done",
			Stdout: &buf, Stderr: &buf,
		})
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(buf.String(), "\n"); n != 18 {
			t.Errorf("shared writer got %d lines: %q", n, buf.String())
		}
	})

	run("SecretRefused", func(t *testing.T, e Executor, ctx context.Context) {
		marker := filepath.Join(t.TempDir(), "ran")
		tok := secret.Token("db_password")
		for name, cmd := range map[string]Command{
			"argv":   {Argv: []string{"touch", marker, tok}},
			"script": {Script: "touch " + marker + " # " + tok},
			"env":    {Argv: []string{"touch", marker}, Env: map[string]string{"PGPASSWORD": tok}},
			"envkey": {Argv: []string{"touch", marker}, Env: map[string]string{tok: "x"}},
			"dir":    {Argv: []string{"touch", marker}, Dir: "/tmp/" + tok},
		} {
			_, err := e.Run(ctx, cmd)
			if !errors.Is(err, ErrSecretInArgv) {
				t.Errorf("%s: err = %v, want ErrSecretInArgv", name, err)
			}
			if err != nil && strings.Contains(err.Error(), tok) {
				t.Errorf("%s: error shows the raw token: %q", name, err)
			}
		}
		if _, err := os.Stat(marker); err == nil {
			t.Error("a command holding a secret token ran")
		}
	})

	run("BadCommand", func(t *testing.T, e Executor, ctx context.Context) {
		for _, cmd := range []Command{
			{},
			{Argv: []string{"true"}, Script: "true"},
			{Argv: []string{"true"}, Env: map[string]string{"A B": "x"}},
		} {
			if _, err := e.Run(ctx, cmd); err == nil {
				t.Errorf("Run(%+v) succeeded", cmd)
			}
		}
	})

	run("Cancel", func(t *testing.T, e Executor, ctx context.Context) {
		ctx, cancel := context.WithCancel(ctx)
		time.AfterFunc(300*time.Millisecond, cancel)
		start := time.Now()
		_, err := e.Run(ctx, Command{Script: "sleep 30; echo survived"})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("cancelled sleep 30 returned after %v", d)
		}
	})

	run("StatReadDirReadFile", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		mustWrite(t, filepath.Join(dir, "b.txt"), "hello", 0o640)
		mustWrite(t, filepath.Join(dir, "a.txt"), "", 0o600)
		mustMkdir(t, filepath.Join(dir, "c"))

		fi, err := e.Stat(ctx, path.Join(dir, "b.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Name != "b.txt" || fi.Size != 5 || fi.Mode != 0o640 || fi.IsDir() || fi.UID != os.Getuid() || fi.GID != os.Getgid() {
			t.Errorf("Stat = %+v", fi)
		}
		if time.Since(fi.ModTime) > time.Minute {
			t.Errorf("ModTime = %v", fi.ModTime)
		}
		if fi, err := e.Stat(ctx, path.Join(dir, "c")); err != nil || !fi.IsDir() {
			t.Errorf("Stat(dir) = %+v, %v", fi, err)
		}

		list, err := e.ReadDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fi := range list {
			names = append(names, fi.Name)
		}
		if strings.Join(names, ",") != "a.txt,b.txt,c" || !list[2].IsDir() {
			t.Errorf("ReadDir = %+v", list)
		}

		b, err := e.ReadFile(ctx, path.Join(dir, "b.txt"))
		if err != nil || string(b) != "hello" {
			t.Errorf("ReadFile = %q, %v", b, err)
		}

		missing := path.Join(dir, "missing")
		_, err1 := e.Stat(ctx, missing)
		_, err2 := e.ReadDir(ctx, missing)
		_, err3 := e.ReadFile(ctx, missing)
		_, err4 := e.Open(ctx, missing)
		_, err5 := e.Checksum(ctx, missing)
		for i, err := range []error{err1, err2, err3, err4, err5} {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("op %d on a missing path: err = %v, want fs.ErrNotExist", i+1, err)
			} else if !strings.Contains(err.Error(), e.Name()) || !strings.Contains(err.Error(), missing) {
				t.Errorf("op %d: error %q names neither host nor path", i+1, err)
			}
		}
	})

	run("OpenSeek", func(t *testing.T, e Executor, ctx context.Context) {
		p := filepath.Join(t.TempDir(), "f")
		mustWrite(t, p, "0123456789", 0o644)
		f, err := e.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Seek(6, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		if err != nil || string(b) != "6789" {
			t.Errorf("read after seek = %q, %v", b, err)
		}
	})

	run("WriteFile", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		p := path.Join(dir, "conf")
		if err := e.WriteFile(ctx, p, []byte("one"), FileAttrs{Mode: 0o640}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "one", 0o640)

		// Replacing keeps the mode when none is asked for.
		if err := e.WriteFile(ctx, p, []byte("two"), FileAttrs{}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "two", 0o640)

		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.WriteFile(ctx, p, []byte("three"), FileAttrs{Mode: 0o600, Owner: u.Username, Group: g.Name}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "three", 0o600)
		if err := e.WriteFile(ctx, p, []byte("four"), FileAttrs{Owner: u.Uid, Group: u.Gid}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "four", 0o600)

		big := bytes.Repeat([]byte("0123456789abcdef"), 40000) // several SFTP packets
		if err := e.WriteFile(ctx, path.Join(dir, "big"), big, FileAttrs{Mode: 0o644}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, path.Join(dir, "big"), string(big), 0o644)

		if err := e.WriteFile(ctx, p, nil, FileAttrs{Owner: "no-such-user-migrun"}); err == nil {
			t.Error("WriteFile with an unknown owner succeeded")
		}
		if err := e.WriteFile(ctx, path.Join(dir, "missing", "f"), nil, FileAttrs{}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("WriteFile into a missing directory: %v", err)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 2 {
			t.Errorf("directory holds %d entries, want 2 (temporary files left behind?)", len(entries))
		}
	})

	run("OpenWriter", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		p := path.Join(dir, "data.part")
		w, err := e.OpenWriter(ctx, p, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, "0123456789"); err != nil {
			t.Fatal(err)
		}
		if err := w.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "0123456789", 0o600)

		// Resume at 4: everything after the offset must go, even the
		// bytes the new write does not cover.
		w, err = e.OpenWriter(ctx, p, 4)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, strings.NewReader("ab")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "0123ab", 0o600)
	})

	run("Rename", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		from, to := path.Join(dir, "new"), path.Join(dir, "old")
		mustWrite(t, from, "new", 0o644)
		mustWrite(t, to, "old", 0o644)
		if err := e.Rename(ctx, from, to); err != nil {
			t.Fatal(err)
		}
		checkFile(t, to, "new", 0o644)
		if _, err := os.Stat(from); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("source still there: %v", err)
		}
		if err := e.Rename(ctx, from, to); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("renaming a missing file: %v", err)
		}
	})

	run("Remove", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		f, d := path.Join(dir, "f"), path.Join(dir, "d")
		mustWrite(t, f, "x", 0o644)
		mustMkdir(t, d)
		for _, p := range []string{f, d, path.Join(dir, "missing")} {
			if err := e.Remove(ctx, p); err != nil {
				t.Errorf("Remove(%s): %v", p, err)
			}
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("left behind: %v", entries)
		}
		mustMkdir(t, d)
		mustWrite(t, path.Join(d, "f"), "x", 0o644)
		if err := e.Remove(ctx, d); err == nil {
			t.Error("removing a non-empty directory succeeded")
		}
	})

	run("MkdirAll", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		p := path.Join(dir, "a", "b", "c")
		if err := e.MkdirAll(ctx, p, 0o750); err != nil {
			t.Fatal(err)
		}
		for _, d := range []string{path.Join(dir, "a"), path.Join(dir, "a", "b"), p} {
			if fi, err := os.Stat(d); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o750 {
				t.Errorf("%s: %v, %v", d, fi.Mode(), err)
			}
		}
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
			t.Errorf("existing parent changed to %v", fi.Mode())
		}
		if err := e.MkdirAll(ctx, p, 0o700); err != nil {
			t.Errorf("MkdirAll on an existing directory: %v", err)
		}
		f := path.Join(dir, "file")
		mustWrite(t, f, "", 0o644)
		if err := e.MkdirAll(ctx, path.Join(f, "sub"), 0o755); err == nil {
			t.Error("MkdirAll under a regular file succeeded")
		}
	})

	run("SetAttrs", func(t *testing.T, e Executor, ctx context.Context) {
		p := filepath.Join(t.TempDir(), "f")
		mustWrite(t, p, "x", 0o600)
		u, _ := user.Current()
		if err := e.SetAttrs(ctx, p, FileAttrs{Mode: 0o654, Owner: u.Username}); err != nil {
			t.Fatal(err)
		}
		checkFile(t, p, "x", 0o654)
		if err := e.SetAttrs(ctx, p+"-missing", FileAttrs{Mode: 0o600}); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("SetAttrs on a missing file: %v", err)
		}
	})

	run("Checksum", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		data := bytes.Repeat([]byte("migrun "), 100000)
		for name, content := range map[string][]byte{"big": data, "empty": nil, "odd name\n'x'": []byte("x")} {
			p := filepath.Join(dir, name)
			mustWrite(t, p, string(content), 0o644)
			sum := sha256.Sum256(content)
			got, err := e.Checksum(ctx, p)
			if err != nil {
				t.Fatal(err)
			}
			if want := hex.EncodeToString(sum[:]); got != want {
				t.Errorf("Checksum(%q) = %s, want %s", name, got, want)
			}
		}
	})

	run("ReadOnlyWrapper", func(t *testing.T, e Executor, ctx context.Context) {
		dir := t.TempDir()
		p := path.Join(dir, "f")
		mustWrite(t, p, "x", 0o644)
		ro := ReadOnly(e)
		if !IsReadOnly(ro) || IsReadOnly(e) || ro.Name() != e.Name() {
			t.Fatal("ReadOnly wrapper misreports itself")
		}
		if _, err := ro.Run(ctx, Command{Argv: []string{"true"}, ReadOnly: true}); err != nil {
			t.Errorf("read-only probe refused: %v", err)
		}
		if b, err := ro.ReadFile(ctx, p); err != nil || string(b) != "x" {
			t.Errorf("ReadFile through ReadOnly = %q, %v", b, err)
		}
		_, errRun := ro.Run(ctx, Command{Argv: []string{"touch", p + "2"}})
		_, errOpen := ro.OpenWriter(ctx, p, 0)
		for i, err := range []error{
			errRun, errOpen,
			ro.WriteFile(ctx, p, []byte("y"), FileAttrs{}),
			ro.Rename(ctx, p, p+"3"),
			ro.Remove(ctx, p),
			ro.MkdirAll(ctx, path.Join(dir, "d"), 0o755),
			ro.SetAttrs(ctx, p, FileAttrs{Mode: 0o600}),
		} {
			if !errors.Is(err, ErrDryRun) {
				t.Errorf("write op %d under dry run: %v", i, err)
			}
		}
		checkFile(t, p, "x", 0o644)
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Errorf("dry run changed the directory: %v", entries)
		}
	})
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func mustWrite(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is umasked
		t.Fatal(err)
	}
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.Mkdir(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func checkFile(t *testing.T, p, content string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != content {
		t.Errorf("%s holds %d bytes %.40q, want %d bytes %.40q", p, len(b), b, len(content), content)
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s has mode %v, want %v", p, fi.Mode(), mode)
	}
}
