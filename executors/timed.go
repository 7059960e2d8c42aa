package executors

import (
	"context"
	"fmt"
	"io/fs"
	"time"
)

// Op is one operation on a host, timed: what `migrun apply --trace`
// records to show where a run's time goes.
type Op struct {
	Host  string
	What  string // "run (as postgres) psql ...", "read /etc/x", "write /etc/x (12 bytes)"; secrets masked
	Start time.Time
	Took  time.Duration
	Err   error
}

// Timed returns e, reporting every operation to report once it ends
// (Open and OpenWriter: the opening only). report gets the operation's
// context, which may say on whose behalf it ran.
func Timed(e Executor, report func(context.Context, Op)) Executor {
	return &timed{e: e, report: report}
}

type timed struct {
	e      Executor
	report func(context.Context, Op)
}

func (t *timed) done(ctx context.Context, what string, start time.Time, err error) {
	t.report(ctx, Op{Host: t.e.Name(), What: what, Start: start, Took: time.Since(start), Err: err})
}

func (t *timed) Name() string { return t.e.Name() }

// Unwrap returns the wrapped executor.
func (t *timed) Unwrap() Executor { return t.e }
func (t *timed) Close() error     { return t.e.Close() }

func (t *timed) Run(ctx context.Context, cmd Command) (Result, error) {
	start := time.Now()
	res, err := t.e.Run(ctx, cmd)
	t.done(ctx, "run "+displayCommand(cmd), start, err)
	return res, err
}

func (t *timed) Stat(ctx context.Context, p string) (FileInfo, error) {
	start := time.Now()
	fi, err := t.e.Stat(ctx, p)
	t.done(ctx, "stat "+p, start, err)
	return fi, err
}

func (t *timed) ReadDir(ctx context.Context, p string) ([]FileInfo, error) {
	start := time.Now()
	fis, err := t.e.ReadDir(ctx, p)
	t.done(ctx, "list "+p, start, err)
	return fis, err
}

func (t *timed) ReadFile(ctx context.Context, p string) ([]byte, error) {
	start := time.Now()
	data, err := t.e.ReadFile(ctx, p)
	t.done(ctx, fmt.Sprintf("read %s (%d bytes)", p, len(data)), start, err)
	return data, err
}

func (t *timed) WriteFile(ctx context.Context, p string, data []byte, attrs FileAttrs) error {
	start := time.Now()
	err := t.e.WriteFile(ctx, p, data, attrs)
	t.done(ctx, fmt.Sprintf("write %s (%d bytes)", p, len(data)), start, err)
	return err
}

func (t *timed) Open(ctx context.Context, p string) (ReadFile, error) {
	start := time.Now()
	f, err := t.e.Open(ctx, p)
	t.done(ctx, "open "+p, start, err)
	return f, err
}

func (t *timed) OpenWriter(ctx context.Context, p string, offset int64) (WriteFile, error) {
	start := time.Now()
	f, err := t.e.OpenWriter(ctx, p, offset)
	t.done(ctx, fmt.Sprintf("open %s for writing at %d", p, offset), start, err)
	return f, err
}

func (t *timed) Rename(ctx context.Context, from, to string) error {
	start := time.Now()
	err := t.e.Rename(ctx, from, to)
	t.done(ctx, "rename "+from+" "+to, start, err)
	return err
}

func (t *timed) Remove(ctx context.Context, p string) error {
	start := time.Now()
	err := t.e.Remove(ctx, p)
	t.done(ctx, "remove "+p, start, err)
	return err
}

func (t *timed) MkdirAll(ctx context.Context, p string, perm fs.FileMode) error {
	start := time.Now()
	err := t.e.MkdirAll(ctx, p, perm)
	t.done(ctx, "mkdir "+p, start, err)
	return err
}

func (t *timed) SetAttrs(ctx context.Context, p string, attrs FileAttrs) error {
	start := time.Now()
	err := t.e.SetAttrs(ctx, p, attrs)
	t.done(ctx, "set attributes of "+p, start, err)
	return err
}

func (t *timed) Checksum(ctx context.Context, p string) (string, error) {
	start := time.Now()
	sum, err := t.e.Checksum(ctx, p)
	t.done(ctx, "checksum "+p, start, err)
	return sum, err
}
