package steps

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/executors/sshtest"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
	"golang.org/x/crypto/ssh"
)

const mib = 1 << 20

// randomBytes returns n bytes that differ per seed, so that a wrong offset
// or a stale part shows in the checksum.
func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func writeFile(t *testing.T, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
}

// assertFile fails unless p holds data with mode.
func assertFile(t *testing.T, p string, data []byte, mode fs.FileMode) {
	t.Helper()
	got, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read copy: %v", err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", p, len(got), len(data))
	}
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != mode {
		t.Errorf("%s: mode %04o, want %04o", p, fi.Mode().Perm(), mode)
	}
	if _, err := os.Stat(p + hostcmd.PartSuffix); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s still exists after the copy", p+hostcmd.PartSuffix)
	}
}

// copyHosts are two Local hosts, "engine" and "db", each recorded, plus
// the workstation ("").
func copyHosts() (hosts, *recorder, *recorder) {
	engine := record(executors.NewLocal("engine"))
	db := record(executors.NewLocal("db"))
	return hosts{"engine": engine, "db": db, "": executors.NewLocal("workstation")}, engine, db
}

// progressLog records what a copy reports.
type progressLog struct {
	mu                 sync.Mutex
	starts             []string
	total, done, added int64
	errs               []error
}

func (p *progressLog) Start(t Task) Bar {
	label, total, done := t.Label, t.Total, t.Done
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts = append(p.starts, label)
	p.total, p.done = total, done
	return p
}

func (p *progressLog) Add(n int64) {
	p.mu.Lock()
	p.added += n
	p.mu.Unlock()
}

func (p *progressLog) Done(err error) {
	p.mu.Lock()
	p.errs = append(p.errs, err)
	p.mu.Unlock()
}

func TestCopyValidate(t *testing.T) {
	tests := []struct {
		name string
		c    Copy
		want []string // "field: message substring"
	}{
		{"remote to remote", Copy{From: "engine:/tmp/a", To: "db:/tmp/a", Mode: "0600", Owner: "postgres", Group: "26"}, nil},
		{"workstation", Copy{From: "/tmp/a", To: "db:/tmp/a", Mode: "644"}, nil},
		{"relative", Copy{From: "engine:tmp/a", To: "tmp/b"}, []string{"from: must be absolute", "to: want HOST:"}},
		{"no path", Copy{From: "engine:", To: ":/x"}, []string{"from: must be absolute", "to: want HOST:"}},
		{"same file", Copy{From: "db:/tmp/a/", To: "db:/tmp/a"}, []string{"to: the same file"}},
		{"into itself", Copy{From: "/srv/d", To: "/srv/d/sub"}, []string{"to: is inside"}},
		{"root", Copy{From: "/srv/d", To: "db:/"}, []string{"to: cannot replace /"}},
		{"mode not octal", Copy{From: "/a", To: "/b", Mode: "0680"}, []string{"mode: not an octal mode"}},
		{"mode too short", Copy{From: "/a", To: "/b", Mode: "6"}, []string{"mode: not an octal mode"}},
		{"mode special bits", Copy{From: "/a", To: "/b", Mode: "4755"}, []string{"mode: only permission bits"}},
		{"mode zero", Copy{From: "/a", To: "/b", Mode: "0000"}, []string{"mode: unreadable"}},
		{"owner with colon", Copy{From: "/a", To: "/b", Owner: "postgres:postgres"}, []string{"owner: not a user"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Validate()
			if len(got) != len(tt.want) {
				t.Fatalf("Validate() = %v, want %d problem(s) %v", got, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				field, msg, _ := strings.Cut(w, ": ")
				if got[i].Field != field || !strings.Contains(got[i].Message, msg) {
					t.Errorf("problem %d = %+v, want field %q and message containing %q", i, got[i], field, msg)
				}
			}
		})
	}
}

func TestCopyHosts(t *testing.T) {
	for _, tt := range []struct {
		c    Copy
		want string
	}{
		{Copy{From: "engine:/a", To: "db:/a"}, "engine,db"},
		{Copy{From: "/a", To: "db:/a"}, ",db"},
		{Copy{From: "db:/a", To: "/b"}, "db,"},
	} {
		if got := strings.Join(tt.c.Hosts("ignored"), ","); got != tt.want {
			t.Errorf("%+v: Hosts = %q, want %q", tt.c, got, tt.want)
		}
	}
}

// TestCopyFile copies between two hosts and from and to the workstation.
func TestCopyFile(t *testing.T) {
	data := randomBytes(3*mib+12345, 1)
	tests := []struct {
		name     string
		from, to string // relative to the test dir; "HOST:" prefixes kept
		srcMode  fs.FileMode
		mode     string
		wantMode fs.FileMode
	}{
		{"remote to remote with mode", "engine:src", "db:dst", 0o644, "0600", 0o600},
		{"source mode kept", "engine:src", "db:dst", 0o640, "", 0o640},
		{"from the workstation", "src", "db:dst", 0o600, "0604", 0o604},
		{"to the workstation", "engine:src", "dst", 0o600, "", 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			loc := func(s string) string {
				if h, p, ok := strings.Cut(s, ":"); ok {
					return h + ":" + filepath.Join(dir, p)
				}
				return filepath.Join(dir, s)
			}
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			writeFile(t, src, data, tt.srcMode)
			h, _, _ := copyHosts()
			var prog progressLog
			rt := testRuntime(h, nil, nil)
			rt.Progress = &prog
			c := &Copy{From: loc(tt.from), To: loc(tt.to), Mode: tt.mode}
			ctx := context.Background()

			chk, err := c.Check(ctx, rt)
			if err != nil || chk.Done || !strings.Contains(chk.Reason, "does not exist") {
				t.Fatalf("Check before = %+v, %v; want not done, destination missing", chk, err)
			}
			dry := testRuntime(hosts{"engine": executors.ReadOnly(h["engine"]), "db": executors.ReadOnly(h["db"]), "": executors.ReadOnly(h[""])}, nil, nil)
			dry.DryRun = true
			out, err := applyShown(ctx, t, c, dry, rt)
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			sum := sha256.Sum256(data)
			if !out.Changed || !strings.Contains(out.Output, "copied 3 MiB") || !strings.Contains(out.Output, hex.EncodeToString(sum[:])) {
				t.Errorf("Outcome = %+v, want changed, size and sha256", out)
			}
			assertFile(t, dst, data, tt.wantMode)
			if prog.total != int64(len(data)) || prog.added != int64(len(data)) || prog.done != 0 || len(prog.errs) != 1 || prog.errs[0] != nil {
				t.Errorf("progress = total %d, start %d, added %d, done %v; want total = added = %d, one Done(nil)", prog.total, prog.done, prog.added, prog.errs, len(data))
			}

			chk, err = c.Check(ctx, rt)
			if err != nil || !chk.Done || !strings.Contains(chk.Reason, "matches (sha256") {
				t.Errorf("Check after = %+v, %v; want done", chk, err)
			}
			// A forced second run finds nothing to do.
			out, err = c.Apply(ctx, rt)
			if err != nil || out.Changed {
				t.Errorf("second Apply = %+v, %v; want unchanged", out, err)
			}
		})
	}
}

func TestCopyCheck(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := randomBytes(1000, 2)
	tests := []struct {
		name        string
		setup       func(t *testing.T)
		c           Copy
		wantDone    bool
		wantUnknown bool
		wantReason  string
		wantErr     string
	}{
		{"source missing", func(t *testing.T) {}, Copy{}, false, true, "source engine:" + src + " does not exist yet", ""},
		{"destination missing", func(t *testing.T) { writeFile(t, src, data, 0o600) }, Copy{}, false, false, "does not exist", ""},
		{"size differs", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			writeFile(t, dst, data[:10], 0o600)
		}, Copy{}, false, false, "is 10 B, engine:" + src + " is 1000 B", ""},
		{"content differs", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			writeFile(t, dst, randomBytes(1000, 3), 0o600)
		}, Copy{}, false, false, "differs from", ""},
		{"mode differs", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			writeFile(t, dst, data, 0o644)
		}, Copy{Mode: "0600"}, false, false, "mode is 0644, want 0600", ""},
		{"owner uid differs", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			writeFile(t, dst, data, 0o600)
		}, Copy{Owner: "4242"}, false, false, "owner is uid", ""},
		{"same", func(t *testing.T) {
			writeFile(t, src, data, 0o640)
			writeFile(t, dst, data, 0o640)
		}, Copy{}, true, false, "matches (sha256", ""},
		{"owner name not verified", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			writeFile(t, dst, data, 0o600)
		}, Copy{Owner: "postgres"}, true, false, "owner postgres not verified", ""},
		{"destination is a directory", func(t *testing.T) {
			writeFile(t, src, data, 0o600)
			os.Mkdir(dst, 0o755)
		}, Copy{}, false, false, "", "is a directory, but"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.RemoveAll(src)
			os.RemoveAll(dst)
			tt.setup(t)
			h, engine, db := copyHosts()
			// As in a dry run: every host read-only.
			for name, e := range h {
				h[name] = executors.ReadOnly(e)
			}
			c := tt.c
			c.From, c.To = "engine:"+src, "db:"+dst
			got, err := c.Check(context.Background(), testRuntime(h, nil, nil))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Check error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got.Done != tt.wantDone || got.Unknown != tt.wantUnknown || !strings.Contains(got.Reason, tt.wantReason) {
				t.Errorf("Check = %+v, want Done %v Unknown %v reason containing %q", got, tt.wantDone, tt.wantUnknown, tt.wantReason)
			}
			if engine.read() != 0 || db.read() != 0 {
				t.Errorf("Check streamed file contents (%d, %d bytes); checksums run on the hosts", engine.read(), db.read())
			}
		})
	}
}

// TestCopyAttrsOnly fixes the mode of an identical copy without copying.
func TestCopyAttrsOnly(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := randomBytes(5000, 4)
	writeFile(t, src, data, 0o600)
	writeFile(t, dst, data, 0o644)
	h, engine, db := copyHosts()
	c := &Copy{From: "engine:" + src, To: "db:" + dst, Mode: "0440"}
	out, err := c.Apply(context.Background(), testRuntime(h, nil, nil))
	if err != nil || !out.Changed {
		t.Fatalf("Apply = %+v, %v; want changed", out, err)
	}
	assertFile(t, dst, data, 0o440)
	if engine.read() != 0 {
		t.Errorf("read %d bytes of the source, want none", engine.read())
	}
	if ops := db.writeOps(); len(ops) != 1 || ops[0] != "attrs "+dst+" 0440  " {
		t.Errorf("destination writes = %q, want one attrs", ops)
	}
}

// TestCopyResume pre-creates part files as an interrupted run leaves them.
func TestCopyResume(t *testing.T) {
	data := randomBytes(5*mib+300_000, 5)
	garbage := func(n int) []byte { return bytes.Repeat([]byte{0xAA}, n) }
	tests := []struct {
		name     string
		part     []byte
		wantFrom int64 // resume offset; -1: the copy fails
	}{
		{"correct prefix", data[:3*mib+100_000], 2 * mib},
		{"prefix of exactly one chunk", data[:mib], 0},
		{"shorter than a chunk", data[:1000], 0},
		{"torn tail within the last chunk", append(append([]byte{}, data[:3*mib]...), garbage(500_000)...), 2 * mib},
		{"whole file", data, 4 * mib},
		{"larger than the source", append(append([]byte{}, data...), garbage(10)...), 0},
		{"empty", nil, 0},
		// Damage before the resume point survives into the copy: the
		// final checksum must catch it and the part must go.
		{"corrupt early", append(garbage(100), data[100:4*mib]...), -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
			writeFile(t, src, data, 0o600)
			writeFile(t, dst+hostcmd.PartSuffix, tt.part, 0o600)
			h, engine, _ := copyHosts()
			var prog progressLog
			rt := testRuntime(h, nil, nil)
			rt.Progress = &prog
			c := &Copy{From: "engine:" + src, To: "db:" + dst}
			ctx := context.Background()

			acts, err := c.Describe(ctx, rt)
			if err != nil {
				t.Fatalf("Describe: %v", err)
			}
			wantDesc := "copy engine:" + src + " -> db:" + dst + " (5.3 MiB, sha256 verified"
			if tt.wantFrom > 0 {
				wantDesc += "; resumes from " + bytesize.Format(tt.wantFrom)
			} else if tt.wantFrom < 0 {
				wantDesc += "; resumes from 3 MiB"
			}
			if acts[0].Summary != wantDesc+")" {
				t.Errorf("Describe = %q\n           want %q", acts[0].Summary, wantDesc+")")
			}

			out, err := c.Apply(ctx, rt)
			if tt.wantFrom < 0 {
				if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), "db:"+dst+hostcmd.PartSuffix) {
					t.Fatalf("Apply error = %v, want a sha256 mismatch naming the part file", err)
				}
				if _, err := os.Stat(dst + hostcmd.PartSuffix); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("bad part file kept: the next attempt would resume from it again")
				}
				if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("destination created despite the mismatch")
				}
				// The next attempt starts over and succeeds.
				if _, err := c.Apply(ctx, rt); err != nil {
					t.Fatalf("Apply after the mismatch: %v", err)
				}
				assertFile(t, dst, data, 0o600)
				return
			}
			if err != nil {
				t.Fatalf("Apply: %v", err)
			}
			assertFile(t, dst, data, 0o600)
			if got, want := engine.read(), int64(len(data))-tt.wantFrom; got != want {
				t.Errorf("read %d bytes of the source, want %d (resumed from %d)", got, want, tt.wantFrom)
			}
			if prog.done != tt.wantFrom || prog.done+prog.added != int64(len(data)) {
				t.Errorf("progress started at %d and added %d; want start %d, sum %d", prog.done, prog.added, tt.wantFrom, len(data))
			}
			if tt.wantFrom > 0 && !strings.Contains(out.Output, "resumed from "+bytesize.Format(tt.wantFrom)) {
				t.Errorf("Output = %q, want the resume noted", out.Output)
			}
		})
	}
}

// cancelBar cancels the copy once it has seen after bytes: an interrupt
// (or a dropped connection) in the middle of a transfer.
type cancelBar struct {
	cancel context.CancelFunc
	after  int64
	seen   int64
}

func (b *cancelBar) Start(Task) Bar { return b }
func (b *cancelBar) Done(error)     {}
func (b *cancelBar) Add(n int64) {
	b.seen += n
	if b.seen >= b.after {
		b.cancel()
	}
}

func TestCopyInterruptedThenResumed(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	data := randomBytes(8*mib, 6)
	writeFile(t, src, data, 0o600)
	h, engine, _ := copyHosts()
	c := &Copy{From: "engine:" + src, To: "db:" + dst}

	ctx, cancel := context.WithCancel(context.Background())
	rt := testRuntime(h, nil, nil)
	rt.Progress = &cancelBar{cancel: cancel, after: 5 * mib}
	_, err := c.Apply(ctx, rt)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Apply: err = %v, want context.Canceled", err)
	}
	fi, err := os.Stat(dst + hostcmd.PartSuffix)
	if err != nil || fi.Size() < 4*mib {
		t.Fatalf("part file after the interrupt: %v, %v; want at least 4 MiB", fi, err)
	}
	readBefore := engine.read()

	rt = testRuntime(h, nil, nil)
	if _, err := c.Apply(context.Background(), rt); err != nil {
		t.Fatalf("resumed Apply: %v", err)
	}
	assertFile(t, dst, data, 0o600)
	resumedRead := engine.read() - readBefore
	if resumedRead >= int64(len(data))-3*mib {
		t.Errorf("the resumed copy read %d bytes of %d: it did not resume", resumedRead, len(data))
	}
}

// corruptingHost flips one byte of everything written through OpenWriter.
type corruptingHost struct{ executors.Executor }

func (c corruptingHost) OpenWriter(ctx context.Context, p string, off int64) (executors.WriteFile, error) {
	w, err := c.Executor.OpenWriter(ctx, p, off)
	return corruptingWriter{w}, err
}

type corruptingWriter struct{ executors.WriteFile }

func (w corruptingWriter) Write(p []byte) (int, error) {
	b := append([]byte(nil), p...)
	b[0] ^= 0xFF
	return w.WriteFile.Write(b)
}

func TestCopyChecksumMismatch(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, src, randomBytes(100_000, 7), 0o600)
	h := hosts{"engine": executors.NewLocal("engine"), "db": corruptingHost{executors.NewLocal("db")}}
	c := &Copy{From: "engine:" + src, To: "db:" + dst}
	_, err := c.Apply(context.Background(), testRuntime(h, nil, nil))
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch after copy engine:"+src+" -> db:"+dst+hostcmd.PartSuffix) {
		t.Fatalf("Apply error = %v, want a sha256 mismatch naming both sides", err)
	}
	for _, p := range []string{dst, dst + hostcmd.PartSuffix} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s exists after a failed verification", p)
		}
	}
}

func TestCopyTree(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "dump.d"), filepath.Join(dir, "copy.d")
	files := map[string][]byte{
		"toc.dat":         randomBytes(2000, 10),
		"3001.dat.gz":     randomBytes(2*mib+7, 11),
		"3002.dat.gz":     nil, // empty
		"sub/deeper/x":    randomBytes(10, 12),
		"sub/y":           randomBytes(300_000, 13),
		"zz-last/another": randomBytes(1, 14),
	}
	var total int64
	for rel, data := range files {
		writeFile(t, filepath.Join(src, rel), data, 0o640)
		total += int64(len(data))
	}
	os.Mkdir(filepath.Join(src, "empty"), 0o750)
	os.Chmod(src, 0o700)

	h, engine, _ := copyHosts()
	var prog progressLog
	rt := testRuntime(h, nil, nil)
	rt.Progress = &prog
	c := &Copy{From: "engine:" + src, To: "db:" + dst, Mode: "0600"}
	ctx := context.Background()

	acts, err := c.Describe(ctx, rt)
	if want := "copy engine:" + src + " -> db:" + dst + " (directory: 6 files, 2.3 MiB, sha256 verified), then mode 0600"; err != nil || acts[0].Summary != want {
		t.Errorf("Describe = %+v, %v\n want %q", acts, err, want)
	}
	if chk, err := c.Check(ctx, rt); err != nil || chk.Done {
		t.Fatalf("Check before = %+v, %v; want not done", chk, err)
	}
	out, err := c.Apply(ctx, rt)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if !out.Changed || !strings.HasPrefix(out.Output, "copied 6 files") {
		t.Errorf("Outcome = %+v", out)
	}
	for rel, data := range files {
		assertFile(t, filepath.Join(dst, rel), data, 0o600)
	}
	for rel, mode := range map[string]fs.FileMode{"": 0o700, "empty": 0o750, "sub": 0o755, "sub/deeper": 0o755} {
		fi, err := os.Stat(filepath.Join(dst, rel))
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != mode {
			t.Errorf("directory %q: %v, %v; want a directory of mode %04o", rel, fi, err, mode)
		}
	}
	if prog.total != total || prog.added != total || len(prog.starts) != 1 {
		t.Errorf("progress = %d bar(s), total %d, added %d; want one bar of %d bytes", len(prog.starts), prog.total, prog.added, total)
	}
	chk, err := c.Check(ctx, rt)
	if err != nil || !chk.Done || !strings.Contains(chk.Reason, "all 6 files") {
		t.Fatalf("Check after = %+v, %v; want done", chk, err)
	}

	// Change one copied file: only it is copied again.
	changed := filepath.Join(dst, "sub/y")
	writeFile(t, changed, randomBytes(300_000, 99), 0o600)
	chk, err = c.Check(ctx, rt)
	if err != nil || chk.Done || !strings.Contains(chk.Reason, "db:"+changed+" differs") {
		t.Fatalf("Check after a change = %+v, %v; want not done, naming %s", chk, err, changed)
	}
	before := engine.read()
	out, err = c.Apply(ctx, rt)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if got := engine.read() - before; got != 300_000 {
		t.Errorf("second Apply read %d bytes, want only the changed file's 300000", got)
	}
	if !strings.Contains(out.Output, "copied 1 file") || !strings.Contains(out.Output, "5 already identical") {
		t.Errorf("second Outcome = %q", out.Output)
	}
	assertFile(t, changed, files["sub/y"], 0o600)
}

func TestCopyTreeRefusesSpecialFiles(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, filepath.Join(src, "a"), []byte("a"), 0o600)
	if err := os.Symlink("/etc/passwd", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	h, _, db := copyHosts()
	c := &Copy{From: "engine:" + src, To: "db:" + dst}
	for name, run := range map[string]func() error{
		"Check": func() error { _, err := c.Check(context.Background(), testRuntime(h, nil, nil)); return err },
		"Apply": func() error { _, err := c.Apply(context.Background(), testRuntime(h, nil, nil)); return err },
	} {
		err := run()
		if err == nil || !strings.Contains(err.Error(), "engine:"+src+"/link is a symlink") {
			t.Errorf("%s error = %v, want one naming the symlink", name, err)
		}
	}
	if ops := db.writeOps(); len(ops) != 0 {
		t.Errorf("wrote %q before refusing", ops)
	}
}

// TestCopyDryRun runs Check and Describe through read-only executors over
// recorders: nothing may be attempted that writes, and Apply is refused.
func TestCopyDryRun(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	writeFile(t, filepath.Join(src, "f"), randomBytes(1000, 20), 0o600)
	writeFile(t, filepath.Join(dst, "f"+hostcmd.PartSuffix), randomBytes(10, 20), 0o600)
	engine, db := record(executors.NewLocal("engine")), record(executors.NewLocal("db"))
	rt := testRuntime(hosts{"engine": executors.ReadOnly(engine), "db": executors.ReadOnly(db)}, nil, nil)
	rt.DryRun = true
	for _, c := range []*Copy{
		{From: "engine:" + src + "/f", To: "db:" + dst + "/f", Mode: "0644", Owner: "0"},
		{From: "engine:" + src, To: "db:" + dst},
		{From: "engine:" + dir + "/not-yet", To: "db:" + dst + "/g"},
	} {
		if _, err := c.Check(context.Background(), rt); err != nil {
			t.Errorf("Check %s: %v", c.From, err)
		}
		if _, err := c.Describe(context.Background(), rt); err != nil {
			t.Errorf("Describe %s: %v", c.From, err)
		}
		// A missing source fails before any write is tried.
		_, err := c.Apply(context.Background(), rt)
		if !errors.Is(err, executors.ErrDryRun) && !(strings.HasSuffix(c.From, "not-yet") && errors.Is(err, fs.ErrNotExist)) {
			t.Errorf("Apply %s under a dry run: err = %v, want ErrDryRun", c.From, err)
		}
	}
	if w := append(engine.writeOps(), db.writeOps()...); len(w) != 0 {
		t.Errorf("writes reached the hosts: %q", w)
	}
	if _, err := os.Stat(filepath.Join(dst, "f")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a dry run created the destination")
	}
}

func TestCopyDescribe(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "engine.dump")
	writeFile(t, src, randomBytes(1536*1024, 30), 0o600)
	h, _, _ := copyHosts()
	tests := []struct {
		name string
		c    Copy
		h    hosts
		want string
		err  bool
	}{
		{"file", Copy{From: "engine:" + src, To: "db:/tmp/x", Mode: "0600", Owner: "postgres", Group: "postgres"}, h,
			"copy engine:" + src + " -> db:/tmp/x (1.5 MiB, sha256 verified), then mode 0600 owner postgres group postgres", false},
		{"source missing", Copy{From: "engine:/nonexistent/dump", To: "/tmp/x", Owner: "postgres"}, h,
			"copy engine:/nonexistent/dump -> /tmp/x (source does not exist yet), then owner postgres", false},
		{"host unreachable", Copy{From: "engine:" + src, To: "db:/tmp/x"}, hosts{},
			"copy engine:" + src + " -> db:/tmp/x", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			acts, err := tt.c.Describe(context.Background(), testRuntime(tt.h, nil, nil))
			if (err != nil) != tt.err {
				t.Errorf("Describe error = %v, want error %v", err, tt.err)
			}
			if len(acts) != 1 || acts[0].Summary != tt.want {
				t.Errorf("Describe = %+v\n  want summary %q", acts, tt.want)
			}
		})
	}
}

// sshHost is an sshtest server and how to dial it.
type sshHost struct {
	srv *sshtest.Server
	cfg executors.SSHConfig
}

func startSSHHost(t *testing.T, name string) *sshHost {
	t.Helper()
	signer, key := sshtest.NewKey(t)
	srv := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{signer.PublicKey()}})
	return &sshHost{srv: srv, cfg: executors.SSHConfig{
		Name:           name,
		Address:        srv.Addr(),
		IdentityFiles:  []string{sshtest.WriteIdentity(t, key, nil)},
		KnownHostsFile: srv.WriteKnownHosts(t),
		SSHConfigFile:  "none",
		AgentSocket:    filepath.Join(t.TempDir(), "no-agent"),
		ConnectTimeout: 5 * time.Second,
	}}
}

func (h *sshHost) dial(t *testing.T) *executors.SSH {
	t.Helper()
	s, err := executors.DialSSH(t.Context(), h.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// cutBar cuts a connection once after bytes have gone through the copy.
type cutBar struct {
	after int64
	seen  int64
	cut   func()
}

func (b *cutBar) Start(Task) Bar { return b }
func (b *cutBar) Done(error)     {}
func (b *cutBar) Add(n int64) {
	b.seen += n
	if b.seen >= b.after && b.cut != nil {
		b.cut()
		b.cut = nil
	}
}

// TestCopyOverSSHResume copies between two SSH hosts, streaming through
// the test process, cuts one side's connection in the middle, then runs
// the step again on fresh connections as a resumed plan would.
func TestCopyOverSSHResume(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SSH servers")
	}
	data := randomBytes(16*mib+4321, 40)
	for _, side := range []string{"engine", "db"} {
		t.Run("cut "+side, func(t *testing.T) {
			engineHost, dbHost := startSSHHost(t, "engine"), startSSHHost(t, "db")
			dir := t.TempDir()
			src, dst := filepath.Join(dir, "engine.dump"), filepath.Join(dir, "copy", "engine.dump")
			writeFile(t, src, data, 0o640)
			os.Mkdir(filepath.Dir(dst), 0o755)
			c := &Copy{From: "engine:" + src, To: "db:" + dst, Mode: "0600"}

			ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second) // fail, don't hang
			defer cancel()
			victim := map[string]*sshHost{"engine": engineHost, "db": dbHost}[side]
			engine := record(engineHost.dial(t))
			rt := testRuntime(hosts{"engine": engine, "db": dbHost.dial(t)}, nil, nil)
			rt.Progress = &cutBar{after: 8 * mib, cut: victim.srv.CloseConnections}
			_, err := c.Apply(ctx, rt)
			if err == nil {
				t.Fatal("Apply survived the cut connection")
			}
			t.Logf("cut: %v", err)
			fi, err := os.Stat(dst + hostcmd.PartSuffix)
			if err != nil || fi.Size() < 2*mib {
				t.Fatalf("part file after the cut: %v, %v; want a few MiB to resume from", fi, err)
			}
			if _, err := os.Stat(dst); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("destination exists after the cut")
			}

			engine = record(engineHost.dial(t))
			var prog progressLog
			rt = testRuntime(hosts{"engine": engine, "db": dbHost.dial(t)}, nil, nil)
			rt.Progress = &prog
			if chk, err := c.Check(ctx, rt); err != nil || chk.Done {
				t.Fatalf("Check after the cut = %+v, %v; want not done", chk, err)
			}
			acts, err := c.Describe(ctx, rt)
			if err != nil || !strings.Contains(acts[0].Summary, "; resumes from ") {
				t.Errorf("Describe = %+v, %v; want a resume noted", acts, err)
			}
			out, err := c.Apply(ctx, rt)
			if err != nil {
				t.Fatalf("resumed Apply: %v", err)
			}
			t.Logf("resumed: %s", out.Output)
			assertFile(t, dst, data, 0o600)
			if prog.done == 0 || engine.read() != int64(len(data))-prog.done {
				t.Errorf("resumed from %d and read %d bytes of %d; want a resume reading only the rest", prog.done, engine.read(), len(data))
			}
			if !strings.Contains(out.Output, "resumed from") {
				t.Errorf("Output = %q", out.Output)
			}
			if chk, err := c.Check(ctx, rt); err != nil || !chk.Done {
				t.Errorf("Check after the resume = %+v, %v; want done", chk, err)
			}
		})
	}
}
