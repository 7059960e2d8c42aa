package executors

// Longer than 400 lines on purpose: it is the local half of the Executor
// interface, one method per operation, mirroring sshfiles.go and ssh.go so
// the two are compared side by side.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// killGrace is how long a cancelled command gets between SIGTERM and SIGKILL,
// and how long Run waits for output pipes held open by stray children.
const killGrace = 2 * time.Second

// Local is the workstation itself.
type Local struct {
	name string
	// BecomeMethod is BecomeSudo (the default when empty) or BecomeSu.
	BecomeMethod string
}

var _ Executor = (*Local)(nil)

// NewLocal returns the executor for the workstation, called name in plans
// and messages.
func NewLocal(name string) *Local { return &Local{name: name} }

// Name returns the host's plan name.
func (l *Local) Name() string { return l.name }

// Close does nothing: there is no connection to release.
func (l *Local) Close() error { return nil }

// Run runs cmd as a child process in its own process group, so that a
// cancel reaches everything the command started, not just the shell.
// An empty Dir runs in migrun's working directory.
func (l *Local) Run(ctx context.Context, cmd Command) (Result, error) {
	if err := checkCommand(l.name, cmd); err != nil {
		return Result{}, err
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("%s: %s: %w", l.name, displayCommand(cmd), err)
	}
	c, err := l.command(cmd)
	if err != nil {
		return Result{}, err
	}
	out := newOutput(cmd)
	var feed func()
	if cmd.Stdin != nil {
		// Fed by our own goroutine through a pipe, as the SSH executor
		// does, rather than by exec's: Wait would wait for exec's copy to
		// end, i.e. for the end of a stdin that a command which failed
		// half way through (psql in a session) no longer reads.
		pr, pw, err := os.Pipe()
		if err != nil {
			return Result{}, fmt.Errorf("%s: %s: stdin: %w", l.name, displayCommand(cmd), err)
		}
		c.Stdin = pr
		defer pr.Close()
		feed = func() {
			io.Copy(pw, cmd.Stdin)
			pw.Close()
		}
		defer func() {
			if feed != nil { // not started: the write end goes too
				pw.Close()
			}
		}()
	}
	c.Stdout, c.Stderr = out.Stdout(), out.Stderr()
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// WaitDelay bounds how long Wait waits for the output pipes after the
	// process exits: a daemon it left behind may hold them open forever.
	c.WaitDelay = killGrace

	start := time.Now()
	if err := c.Start(); err != nil {
		return Result{}, fmt.Errorf("%s: %s: %w", l.name, displayCommand(cmd), err)
	}
	if feed != nil {
		go feed()
		feed = nil
	}
	done := make(chan struct{})
	go killOnCancel(ctx, c.Process.Pid, done)
	waitErr := c.Wait()
	close(done)

	res := Result{Duration: time.Since(start)}
	res.Stdout, res.Stderr = out.result()
	if ctx.Err() != nil {
		res.ExitCode = -1
		return res, fmt.Errorf("%s: %s: %w", l.name, displayCommand(cmd), ctx.Err())
	}
	var ee *exec.ExitError
	switch {
	case waitErr == nil:
		return res, nil
	case errors.As(waitErr, &ee):
		res.ExitCode = exitCode(ee.ProcessState)
		return res, requireTTYHint(newExitError(l.name, cmd, res.ExitCode, res.Stderr))
	case errors.Is(waitErr, exec.ErrWaitDelay):
		// The command itself exited 0; only a straggler kept the pipes.
		return res, nil
	default:
		return res, fmt.Errorf("%s: %s: %w", l.name, displayCommand(cmd), waitErr)
	}
}

// command builds the exec.Cmd for cmd, wrapping it in sudo or su for Become.
func (l *Local) command(cmd Command) (*exec.Cmd, error) {
	if cmd.Become != "" {
		method, err := checkBecomeMethod(l.BecomeMethod)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", l.name, err)
		}
		// The target user's environment is built by sudo/su, so Env and
		// Dir travel inside the shell line rather than on the process.
		argv := becomeArgv(method, cmd.Become, shellLine(cmd))
		return exec.Command(argv[0], argv[1:]...), nil
	}
	var c *exec.Cmd
	if cmd.Script != "" {
		c = exec.Command("sh", "-c", cmd.Script)
	} else {
		c = exec.Command(cmd.Argv[0], cmd.Argv[1:]...)
	}
	c.Dir = cmd.Dir
	if len(cmd.Env) > 0 {
		c.Env = append(os.Environ(), envAssignments(cmd.Env)...)
	}
	return c, nil
}

// killOnCancel signals the process group pgid when ctx is cancelled before
// done closes: SIGTERM first so the command can clean up, SIGKILL after
// killGrace for whatever is left of the group.
func killOnCancel(ctx context.Context, pgid int, done <-chan struct{}) {
	select {
	case <-done:
		return
	case <-ctx.Done():
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(killGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
	// Children that ignored SIGTERM may outlive the leader; the group id
	// stays theirs while any member lives, so this cannot hit a stranger.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}

// exitCode is the shell's convention: the status, or 128+signal.
func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func (l *Local) wrap(op, p string, err error) error { return fileError(l.name, op, p, err) }

// Stat describes p, following symlinks.
func (l *Local) Stat(ctx context.Context, p string) (FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return FileInfo{}, l.wrap("stat", p, err)
	}
	fi, err := os.Stat(filepath.FromSlash(p))
	if err != nil {
		return FileInfo{}, l.wrap("stat", p, err)
	}
	return localFileInfo(fi), nil
}

func localFileInfo(fi fs.FileInfo) FileInfo {
	info := FileInfo{Name: fi.Name(), Size: fi.Size(), Mode: fi.Mode(), ModTime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		info.UID, info.GID = int(st.Uid), int(st.Gid)
	}
	return info
}

// ReadDir lists p sorted by name; entries describe links, not their targets.
func (l *Local) ReadDir(ctx context.Context, p string) ([]FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.wrap("readdir", p, err)
	}
	entries, err := os.ReadDir(filepath.FromSlash(p))
	if err != nil {
		return nil, l.wrap("readdir", p, err)
	}
	infos := make([]FileInfo, 0, len(entries))
	for _, e := range entries {
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed since the listing
		}
		if err != nil {
			return nil, l.wrap("readdir", p, err)
		}
		infos = append(infos, localFileInfo(fi))
	}
	sort.Slice(infos, func(i, j int) bool { return infos[i].Name < infos[j].Name })
	return infos, nil
}

// ReadFile reads the whole file p.
func (l *Local) ReadFile(ctx context.Context, p string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.wrap("read", p, err)
	}
	b, err := os.ReadFile(filepath.FromSlash(p))
	if err != nil {
		return nil, l.wrap("read", p, err)
	}
	return b, nil
}

// WriteFile replaces p atomically with data. See Executor.WriteFile. A zero
// attrs.Mode keeps the mode of the file being replaced, or gets the umask
// default for a new file.
func (l *Local) WriteFile(ctx context.Context, p string, data []byte, attrs FileAttrs) (err error) {
	if err := ctx.Err(); err != nil {
		return l.wrap("write", p, err)
	}
	uid, gid, err := lookupOwner(attrs)
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", l.name, p, err)
	}
	if err := WriteFileAtomic(filepath.FromSlash(p), data, attrs.Mode&chmodBits, uid, gid); err != nil {
		return l.wrap("write", p, err)
	}
	return nil
}

// WriteFileAtomic replaces the local file name with data so that a crash
// at any moment leaves the old file or the new one, never a torn one: a
// temporary file beside it, written, synced, given its owner (uid, gid;
// -1 keeps) and mode, renamed over name, the directory synced. A zero mode
// keeps the mode of the file being replaced, or gets the umask default.
// It is migrun's one atomic local write (the journal uses it too).
func WriteFileAtomic(name string, data []byte, mode fs.FileMode, uid, gid int) (err error) {
	if mode == 0 {
		if fi, err := os.Stat(name); err == nil {
			mode = fi.Mode() & chmodBits
		}
	}
	// While the data is written the file is 0600 whenever a final mode is
	// known, so a secret never sits world-readable, even for a moment.
	createPerm := fs.FileMode(0o666)
	if mode != 0 {
		createPerm = 0o600
	}
	tmp, f, err := createTemp(name, createPerm)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	// chown before chmod: chown clears set-id bits.
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return fmt.Errorf("chown: %w", err)
		}
	}
	if mode != 0 {
		if err := f.Chmod(mode); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, name); err != nil {
		return err
	}
	// The rename is durable only once the directory entry is synced.
	return syncDir(filepath.Dir(name))
}

// createTemp creates .BASE.migrun-tmp-RANDOM next to name, exclusively.
func createTemp(name string, perm fs.FileMode) (string, *os.File, error) {
	dir, base := filepath.Split(name)
	for range 10 {
		tmp := filepath.Join(dir, tempName(base))
		f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return tmp, f, err
	}
	return "", nil, fmt.Errorf("create temporary file next to %s: too many collisions", name)
}

// syncDir makes the entries of dir (a rename into it) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Open opens p for reading.
func (l *Local) Open(ctx context.Context, p string) (ReadFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.wrap("open", p, err)
	}
	f, err := os.Open(filepath.FromSlash(p))
	if err != nil {
		return nil, l.wrap("open", p, err)
	}
	return f, nil
}

// OpenWriter opens p for writing at offset. See Executor.OpenWriter.
func (l *Local) OpenWriter(ctx context.Context, p string, offset int64) (WriteFile, error) {
	if err := ctx.Err(); err != nil {
		return nil, l.wrap("open", p, err)
	}
	f, err := os.OpenFile(filepath.FromSlash(p), os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, l.wrap("open", p, err)
	}
	if err := f.Truncate(offset); err != nil {
		f.Close()
		return nil, l.wrap("truncate", p, err)
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		f.Close()
		return nil, l.wrap("seek", p, err)
	}
	return f, nil
}

// Rename renames from to to, replacing to.
func (l *Local) Rename(ctx context.Context, from, to string) error {
	if err := ctx.Err(); err != nil {
		return l.wrap("rename", from, err)
	}
	if err := os.Rename(filepath.FromSlash(from), filepath.FromSlash(to)); err != nil {
		return l.wrap("rename", from, err)
	}
	return nil
}

// Remove removes a file or empty directory; a missing one is fine.
func (l *Local) Remove(ctx context.Context, p string) error {
	if err := ctx.Err(); err != nil {
		return l.wrap("remove", p, err)
	}
	if err := os.Remove(filepath.FromSlash(p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l.wrap("remove", p, err)
	}
	return nil
}

// MkdirAll creates p and its missing parents with exactly mode perm.
func (l *Local) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	if err := ctx.Err(); err != nil {
		return l.wrap("mkdir", p, err)
	}
	return mkdirAll(p, perm, dirOps{
		isDir: func(p string) (bool, error) {
			fi, err := os.Stat(filepath.FromSlash(p))
			if err != nil {
				return false, err
			}
			return fi.IsDir(), nil
		},
		mkdir: func(p string) error { return os.Mkdir(filepath.FromSlash(p), 0o700) },
		chmod: func(p string, m fs.FileMode) error { return os.Chmod(filepath.FromSlash(p), m) },
		wrap:  l.wrap,
	})
}

// SetAttrs applies attrs.Mode (if set) and owner/group (if set) to p.
func (l *Local) SetAttrs(ctx context.Context, p string, attrs FileAttrs) error {
	if err := ctx.Err(); err != nil {
		return l.wrap("chmod", p, err)
	}
	uid, gid, err := lookupOwner(attrs)
	if err != nil {
		return fmt.Errorf("%s: chown %s: %w", l.name, p, err)
	}
	name := filepath.FromSlash(p)
	if uid >= 0 || gid >= 0 {
		if err := os.Chown(name, uid, gid); err != nil {
			return l.wrap("chown", p, err)
		}
	}
	if m := attrs.Mode & chmodBits; m != 0 {
		if err := os.Chmod(name, m); err != nil {
			return l.wrap("chmod", p, err)
		}
	}
	return nil
}

// Checksum returns the hex sha256 of p's contents.
func (l *Local) Checksum(ctx context.Context, p string) (string, error) {
	f, err := l.Open(ctx, p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		if ctx.Err() != nil {
			err = ctx.Err()
		}
		return "", l.wrap("checksum", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// chmodBits are the mode bits FileAttrs.Mode may set.
const chmodBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky
