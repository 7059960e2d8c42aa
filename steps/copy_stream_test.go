package steps

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// opCounter counts the calls made to a host: each is a round trip over
// SSH.
type opCounter struct {
	executors.Executor
	n atomic.Int64
}

func (c *opCounter) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	c.n.Add(1)
	return c.Executor.Run(ctx, cmd)
}
func (c *opCounter) Stat(ctx context.Context, p string) (executors.FileInfo, error) {
	c.n.Add(1)
	return c.Executor.Stat(ctx, p)
}
func (c *opCounter) ReadDir(ctx context.Context, p string) ([]executors.FileInfo, error) {
	c.n.Add(1)
	return c.Executor.ReadDir(ctx, p)
}
func (c *opCounter) Open(ctx context.Context, p string) (executors.ReadFile, error) {
	c.n.Add(1)
	return c.Executor.Open(ctx, p)
}
func (c *opCounter) OpenWriter(ctx context.Context, p string, off int64) (executors.WriteFile, error) {
	c.n.Add(1)
	return c.Executor.OpenWriter(ctx, p, off)
}
func (c *opCounter) Rename(ctx context.Context, a, b string) error {
	c.n.Add(1)
	return c.Executor.Rename(ctx, a, b)
}
func (c *opCounter) Checksum(ctx context.Context, p string) (string, error) {
	c.n.Add(1)
	return c.Executor.Checksum(ctx, p)
}

// dumpDir writes n files like a pg_dump -F d archive's, and a toc.dat.
func dumpDir(t *testing.T, dir string, n int) map[string][]byte {
	files := map[string][]byte{"toc.dat": randomBytes(5000, 1)}
	for i := range n {
		files[fmt.Sprintf("%d.dat.gz", 3000+i)] = randomBytes(100+i*37, uint64(i+2))
	}
	for rel, data := range files {
		writeFile(t, filepath.Join(dir, rel), data, 0o640)
	}
	os.Chmod(dir, 0o700)
	return files
}

// A new directory tree goes in one stream: the number of round trips does
// not grow with the number of files.
func TestCopyTreeOneStream(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "dump.d"), filepath.Join(dir, "copy.d")
	files := dumpDir(t, src, 300)
	engine, db := &opCounter{Executor: executors.NewLocal("engine")}, &opCounter{Executor: executors.NewLocal("db")}
	rt := testRuntime(hosts{"engine": engine, "db": db}, nil, nil)
	out, err := (&Copy{From: "engine:" + src, To: "db:" + dst, Mode: "0600", Owner: "0"}).Apply(context.Background(), rt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.Output, "copied 301 files") {
		t.Errorf("output %q", out.Output)
	}
	for rel, data := range files {
		assertFile(t, filepath.Join(dst, rel), data, 0o600)
	}
	if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the copy's root: %v %v, want mode 0700 as the source's", fi, err)
	}
	if _, err := os.Stat(dst + hostcmd.PartSuffix); !os.IsNotExist(err) {
		t.Errorf("the part directory is left: %v", err)
	}
	// A file at a time took a dozen calls per file (3600 here).
	if e, d := engine.n.Load(), db.n.Load(); e+d > 20 {
		t.Errorf("%d calls to the source and %d to the destination for 301 files; want a handful", e, d)
	}
}

// An interrupted stream resumes: the files already whole in the part
// directory stay as they are, a truncated one is sent again.
func TestCopyTreeStreamResumes(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "dump.d"), filepath.Join(dir, "copy.d")
	files := dumpDir(t, src, 20)
	big := randomBytes(3*mib+7, 77) // a large table's file, cut at 2.5 MiB
	files["9999.dat.gz"] = big
	writeFile(t, filepath.Join(src, "9999.dat.gz"), big, 0o640)
	part := dst + hostcmd.PartSuffix
	for _, rel := range []string{"3001.dat.gz", "3002.dat.gz", "toc.dat"} {
		writeFile(t, filepath.Join(part, rel), files[rel], 0o600)
	}
	writeFile(t, filepath.Join(part, "3003.dat.gz"), files["3003.dat.gz"][:50], 0o600) // cut short: sent again
	writeFile(t, filepath.Join(part, "9999.dat.gz"), big[:5*mib/2], 0o600)             // goes on from 1 MiB
	ino := func(p string) uint64 {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	kept := ino(filepath.Join(part, "3001.dat.gz"))

	h, engine, _ := copyHosts()
	out, err := (&Copy{From: "engine:" + src, To: "db:" + dst}).Apply(context.Background(), testRuntime(h, nil, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := engine.read(); got != int64(len(big))-mib {
		t.Errorf("read %d bytes of the large file, want the %d after its first MiB", got, int64(len(big))-mib)
	}
	resumed := len(files["3001.dat.gz"]) + len(files["3002.dat.gz"]) + len(files["toc.dat"]) + mib
	if !strings.Contains(out.Output, fmt.Sprintf("resumed from %s already there", bytesize.Format(int64(resumed)))) {
		t.Errorf("output %q: want the three whole files kept", out.Output)
	}
	if ino(filepath.Join(dst, "3001.dat.gz")) != kept {
		t.Error("a file already whole was written again")
	}
	for rel, data := range files {
		assertFile(t, filepath.Join(dst, rel), data, 0o640)
	}
}

// damagingHost changes a byte of one file after tar unpacked the stream,
// as a faulty disk or network would: the copy must notice.
type damagingHost struct {
	executors.Executor
	file string
}

func (d damagingHost) Run(ctx context.Context, cmd executors.Command) (executors.Result, error) {
	res, err := d.Executor.Run(ctx, cmd)
	if err == nil && len(cmd.Argv) > 2 && cmd.Argv[2] == streamTargetScript {
		b, _ := os.ReadFile(d.file)
		b[0] ^= 0xFF
		os.WriteFile(d.file, b, 0o600)
	}
	return res, err
}

func TestCopyTreeStreamVerifies(t *testing.T) {
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "dump.d"), filepath.Join(dir, "copy.d")
	dumpDir(t, src, 5)
	bad := filepath.Join(dst+hostcmd.PartSuffix, "3002.dat.gz")
	h := hosts{"engine": executors.NewLocal("engine"), "db": damagingHost{executors.NewLocal("db"), bad}}
	_, err := (&Copy{From: "engine:" + src, To: "db:" + dst}).Apply(context.Background(), testRuntime(h, nil, nil))
	if err == nil || !strings.Contains(err.Error(), "sha256 mismatch") || !strings.Contains(err.Error(), "3002.dat.gz") {
		t.Fatalf("err = %v, want a sha256 mismatch naming 3002.dat.gz", err)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Error("the damaged file was kept in the part directory")
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Error("the damaged copy was renamed into place")
	}
}

// Over SSH the stream goes through the workstation's two sessions; a cut
// connection leaves a part directory the next attempt resumes from.
func TestCopyTreeStreamOverSSH(t *testing.T) {
	if testing.Short() {
		t.Skip("starts SSH servers")
	}
	engineHost, dbHost := startSSHHost(t, "engine"), startSSHHost(t, "db")
	dir := t.TempDir()
	src, dst := filepath.Join(dir, "dump.d"), filepath.Join(dir, "copy.d")
	files := dumpDir(t, src, 50)
	files["9999.dat.gz"] = randomBytes(12*mib, 88)
	writeFile(t, filepath.Join(src, "9999.dat.gz"), files["9999.dat.gz"], 0o640)
	c := &Copy{From: "engine:" + src, To: "db:" + dst, Mode: "0600"}
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()

	rt := testRuntime(hosts{"engine": engineHost.dial(t), "db": dbHost.dial(t)}, nil, nil)
	rt.Progress = &cutBar{after: 6 * mib, cut: dbHost.srv.CloseConnections}
	if _, err := c.Apply(ctx, rt); err == nil {
		t.Fatal("Apply survived the cut connection")
	}
	if _, err := os.Stat(dst + hostcmd.PartSuffix); err != nil {
		t.Fatalf("no part directory after the cut: %v", err)
	}
	rt = testRuntime(hosts{"engine": engineHost.dial(t), "db": dbHost.dial(t)}, nil, nil)
	out, err := c.Apply(ctx, rt)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.Output, "resumed from") {
		t.Errorf("output %q: want a resume", out.Output)
	}
	for rel, data := range files {
		assertFile(t, filepath.Join(dst, rel), data, 0o600)
	}
}
