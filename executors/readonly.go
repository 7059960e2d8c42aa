package executors

import (
	"context"
	"fmt"
	"io/fs"
)

// ReadOnly wraps e for a dry run: everything that only reads passes
// through, everything that would change the host fails with an error
// wrapping ErrDryRun. Run is allowed for commands marked ReadOnly (a step's
// check), so a dry run evaluates real conditions instead of guessing.
func ReadOnly(e Executor) Executor {
	if IsReadOnly(e) {
		return e
	}
	return readOnly{e}
}

// IsReadOnly reports whether e was wrapped by ReadOnly.
func IsReadOnly(e Executor) bool {
	_, ok := e.(readOnly)
	return ok
}

type readOnly struct{ e Executor }

func (r readOnly) refuse(op, p string) error {
	return fmt.Errorf("%s: %s %s: %w", r.e.Name(), op, p, ErrDryRun)
}

func (r readOnly) Name() string { return r.e.Name() }

// Unwrap returns the wrapped executor.
func (r readOnly) Unwrap() Executor { return r.e }
func (r readOnly) Close() error     { return r.e.Close() }

func (r readOnly) Run(ctx context.Context, cmd Command) (Result, error) {
	if !cmd.ReadOnly {
		return Result{}, r.refuse("run", displayCommand(cmd))
	}
	return r.e.Run(ctx, cmd)
}

func (r readOnly) Stat(ctx context.Context, p string) (FileInfo, error) {
	return r.e.Stat(ctx, p)
}

func (r readOnly) ReadDir(ctx context.Context, p string) ([]FileInfo, error) {
	return r.e.ReadDir(ctx, p)
}

func (r readOnly) ReadFile(ctx context.Context, p string) ([]byte, error) {
	return r.e.ReadFile(ctx, p)
}

func (r readOnly) Open(ctx context.Context, p string) (ReadFile, error) {
	return r.e.Open(ctx, p)
}

func (r readOnly) Checksum(ctx context.Context, p string) (string, error) {
	return r.e.Checksum(ctx, p)
}

func (r readOnly) WriteFile(ctx context.Context, p string, data []byte, attrs FileAttrs) error {
	return r.refuse("write", p)
}

func (r readOnly) OpenWriter(ctx context.Context, p string, offset int64) (WriteFile, error) {
	return nil, r.refuse("open for writing", p)
}

func (r readOnly) Rename(ctx context.Context, from, to string) error {
	return r.refuse("rename", from+" to "+to)
}

func (r readOnly) Remove(ctx context.Context, p string) error {
	return r.refuse("remove", p)
}

func (r readOnly) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	return r.refuse("mkdir", p)
}

func (r readOnly) SetAttrs(ctx context.Context, p string, attrs FileAttrs) error {
	return r.refuse("set attributes of", p)
}
