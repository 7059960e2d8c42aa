// Package executors runs commands and file operations on one host, either the
// workstation itself (Local) or a machine reached over SSH (SSH). Both satisfy
// Executor, so a step never knows which one it talks to.
package executors

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"strconv"
	"time"
)

// Executor is one host. Every method takes remote-style slash paths ("path",
// not "path/filepath"). Errors wrap fs.ErrNotExist where a path is missing,
// and carry the host name.
type Executor interface {
	// Name is the plan's name for the host ("engine", "db", "here").
	Name() string

	// Run runs one command and waits for it. A non-zero exit is returned as
	// *ExitError; a connection lost mid-command as an error wrapping
	// ErrOutcomeUnknown, because the command may or may not have run.
	Run(ctx context.Context, cmd Command) (Result, error)

	// Stat describes path without following a final symlink's target
	// being absent (it follows symlinks like os.Stat).
	Stat(ctx context.Context, path string) (FileInfo, error)
	// ReadDir lists a directory, sorted by name.
	ReadDir(ctx context.Context, path string) ([]FileInfo, error)
	// ReadFile reads a whole (small) file.
	ReadFile(ctx context.Context, path string) ([]byte, error)
	// WriteFile replaces path atomically: it writes a temporary file in the
	// same directory, syncs it, applies attrs and renames it over path.
	WriteFile(ctx context.Context, path string, data []byte, attrs FileAttrs) error
	// Open opens a file for reading; the returned file can seek, so a
	// resumed transfer reads from an offset.
	Open(ctx context.Context, path string) (ReadFile, error)
	// OpenWriter opens path for writing at offset, creating it (mode 0600)
	// if absent and truncating it to offset first, so bytes after a
	// resume point never survive. It never uses O_APPEND.
	OpenWriter(ctx context.Context, path string, offset int64) (WriteFile, error)
	// Rename renames from to to, replacing to if it exists (POSIX rename).
	Rename(ctx context.Context, from, to string) error
	// Remove removes a file or an empty directory; a missing path is not an error.
	Remove(ctx context.Context, path string) error
	// MkdirAll creates a directory and its parents with mode perm.
	MkdirAll(ctx context.Context, path string, perm fs.FileMode) error
	// SetAttrs applies mode and owner/group (names, resolved on the host).
	SetAttrs(ctx context.Context, path string, attrs FileAttrs) error
	// Checksum returns the hex sha256 of a file's contents, computed on the
	// host itself where it can (sha256sum), so the bytes need not travel.
	Checksum(ctx context.Context, path string) (string, error)

	// Close releases the connection. Safe to call twice.
	Close() error
}

// Command is one process to run. Exactly one of Argv and Script is set.
type Command struct {
	// Argv is run directly (locally) or shell-quoted word by word (SSH).
	Argv []string
	// Script is a POSIX shell script run by `sh -c`.
	Script string
	// Stdin feeds the process; secrets reach commands this way only.
	Stdin io.Reader
	// SecretStdin marks a Stdin that holds a secret. Over SSH a short
	// text stdin otherwise goes through the connection's shell as a
	// here-document, which some shells (bash before 5.1) write to a
	// temporary file; this one takes a session of its own.
	SecretStdin bool
	// Env adds variables. On SSH they are set with `env K=V`, visible in
	// ps: never put a secret here (Run refuses secret tokens anywhere in
	// Argv, Script, Env and Dir).
	Env map[string]string
	// Dir is the working directory; empty means the login directory.
	Dir string
	// Become runs the command as this user (sudo -n -u USER, or su - USER
	// -c, per the host's BecomeMethod). Empty runs as the login user.
	Become string
	// Stdout and Stderr, when set, receive output as it arrives. Result
	// keeps a bounded tail of both either way.
	Stdout, Stderr io.Writer
	// ReadOnly marks a probe that changes nothing (a step's check). Only
	// read-only commands may run under a dry run (see ReadOnly).
	ReadOnly bool
	// Fact names the state a read-only probe observes, for the fingerprint
	// of a reviewed plan ("postgresql db:5432: SELECT ..."); empty means the
	// command line itself (see Recording).
	Fact string
	// Unstable says why a probe's output must not be fingerprinted: it
	// changes on its own (row counts of a database in use) or derives from
	// a secret (a password verifier). Empty means fingerprint it.
	Unstable string
}

// Result is what a finished command left behind.
type Result struct {
	ExitCode int
	// Stdout and Stderr hold at most the last OutputTail bytes of each.
	Stdout, Stderr []byte
	Duration       time.Duration
}

// OutputTail bounds the output kept in a Result.
const OutputTail = 64 << 10

// FileAttrs are the wanted mode and owner of a file. Zero values leave the
// attribute as the host decides (umask, login user).
type FileAttrs struct {
	Mode  fs.FileMode // permission bits only; 0 = unchanged/default
	Owner string      // user name or numeric uid
	Group string      // group name or numeric gid
}

// FileInfo describes one file on a host.
type FileInfo struct {
	Name    string // base name
	Size    int64
	Mode    fs.FileMode // includes fs.ModeDir / fs.ModeSymlink type bits
	ModTime time.Time
	UID     int
	GID     int
}

// IsDir reports whether the file is a directory.
func (fi FileInfo) IsDir() bool { return fi.Mode.IsDir() }

// ReadFile is an open file on a host, for reading.
type ReadFile interface {
	io.ReadSeekCloser
}

// WriteFile is an open file on a host, for writing. Sync flushes it to
// stable storage on the host; Close does not imply Sync.
type WriteFile interface {
	io.WriteCloser
	Sync() error
}

// ExitError is a command that ran and exited non-zero.
type ExitError struct {
	Host     string
	Command  string // the command as shown to users (secrets masked)
	ExitCode int
	Stderr   string // tail of stderr, trimmed
}

func (e *ExitError) Error() string {
	msg := e.Host + ": " + e.Command + ": exit status " + strconv.Itoa(e.ExitCode)
	if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

var (
	// ErrOutcomeUnknown: the connection died while a command ran; it may
	// or may not have taken effect. Resume must re-check, never assume.
	ErrOutcomeUnknown = errors.New("connection lost while the command ran: outcome unknown")
	// ErrDryRun is returned by a ReadOnly executor for anything that writes.
	ErrDryRun = errors.New("refused under dry run: this would change the host")
	// ErrSecretInArgv: a secret token reached argv, env, dir or a script.
	ErrSecretInArgv = errors.New("a secret would appear in a process's argv or environment; pass it on stdin")
	// ErrUnknownHostKey and ErrChangedHostKey are the host key refusals.
	ErrUnknownHostKey = errors.New("unknown host key")
	ErrChangedHostKey = errors.New("HOST KEY CHANGED")
)
