package steps

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/migrun/migrun/executors"
)

// copy's copier: one copy between two connected hosts, and the direct
// route (copy_direct.go) it sets up on first use and gives up when the
// target refuses it.

// copier is one copy between two connected hosts.
type copier struct {
	spec     *Copy
	from, to location
	src, dst executors.Executor
	mode     fs.FileMode // wanted mode; 0: the source file's
	direct   *directLink // set up by the first direct transfer
	// relayed says why a direct copy went through the workstation after
	// all; "" while it goes direct (or was not asked to).
	relayed string
}

// link returns the direct copy's access, setting it up on first use.
func (t *copier) link(ctx context.Context) (*directLink, error) {
	if t.direct == nil {
		l, err := openDirect(ctx, t.src, t.dst, t.to)
		if err != nil {
			return nil, err
		}
		t.direct = l
	}
	return t.direct, nil
}

// relay gives up the direct route after why (the target's sshd reads no
// keys file migrun can add to, or refused the source's key): the access
// is removed and this file and the rest go through the workstation, as
// the step's output says.
func (t *copier) relay(ctx context.Context, why error) error {
	t.relayed = "not directly (" + why.Error() + "): copied through the workstation"
	var err error
	t.closeLink(ctx, &err)
	t.direct = nil
	return err
}

// relayNote is the first line of the output when a direct copy went
// through the workstation.
func (t *copier) relayNote() string {
	if t.relayed == "" {
		return ""
	}
	return t.relayed + "\n"
}

// closeLink removes a direct copy's access, adding any failure to err.
func (t *copier) closeLink(ctx context.Context, err *error) {
	if t.direct != nil {
		if cerr := t.direct.close(ctx); cerr != nil {
			*err = errors.Join(*err, cerr)
		}
	}
}

func (c *Copy) open(ctx context.Context, rt *Runtime) (*copier, error) {
	t := &copier{spec: c}
	var err error
	if t.from, err = parseLocation(c.From); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if t.to, err = parseLocation(c.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	if c.Mode != "" {
		if t.mode, err = parseMode(c.Mode); err != nil {
			return nil, fmt.Errorf("mode: %w", err)
		}
	}
	if t.src, err = rt.Executor(ctx, t.from.Host); err != nil {
		return nil, fmt.Errorf("source %s: %w", t.from, err)
	}
	if t.dst, err = rt.Executor(ctx, t.to.Host); err != nil {
		return nil, fmt.Errorf("destination %s: %w", t.to, err)
	}
	return t, nil
}

func (t *copier) statSource(ctx context.Context) (executors.FileInfo, error) {
	fi, err := t.src.Stat(ctx, t.from.Path)
	if err != nil {
		return fi, fmt.Errorf("source %s: %w", t.from, err)
	}
	if !fi.IsDir() && !fi.Mode.IsRegular() {
		return fi, fmt.Errorf("source %s is not a regular file or a directory (%s)", t.from, fi.Mode.Type())
	}
	return fi, nil
}
