package runner

import (
	"context"
	"errors"
	"os"
	"time"
)

// A Store keeps plans' journals and their locks. status, the dry run and
// apply read a journal through it; only apply writes one, and only through
// the Lock it holds for the whole run, so two runs of one plan never write
// the same journal. The default store is a directory of files (FileStore);
// package pgstate keeps them in a PostgreSQL database, where a run
// started on one workstation can be resumed from another.
type Store interface {
	// Read returns the journal of the plan called name, every transition
	// recorded replayed; nil (and no error) when there is none.
	Read(ctx context.Context, name string) (*Journal, error)
	// Lock takes the exclusive lock of the plan called name, or fails at
	// once with an error wrapping ErrLocked that says who holds it. holder
	// describes this process to whoever finds the lock taken.
	Lock(ctx context.Context, name string, holder Holder) (Lock, error)
	// String names the store in messages ("state dir .migrun").
	String() string
}

// Holder is who takes a lock: enough for a person who finds it taken to
// know where to look.
type Holder struct {
	PID         int
	User        string
	Workstation string
	Since       time.Time
}

// ThisProcess is the Holder for a lock this process takes now.
func ThisProcess(now func() time.Time) Holder {
	who, ws := whoAmI()
	return Holder{PID: os.Getpid(), User: who, Workstation: ws, Since: now()}
}

// A Lock is a plan's lock, held, and the only way to write its journal.
// Its methods are called from one goroutine at a time.
type Lock interface {
	// Read is Store.Read under the lock.
	Read(ctx context.Context) (*Journal, error)
	// Save replaces the journal with j, durably, and starts an empty log
	// of transitions after it.
	Save(ctx context.Context, j *Journal) error
	// Append records one transition after the last Save. sync makes it,
	// and every one before it, durable; without it the transition
	// survives the death of migrun but not of the machine that keeps it.
	Append(ctx context.Context, e LogEntry, sync bool) error
	// Lost is closed when the lock is lost while held (the database ended
	// the session that held it): another run may take it, so this one
	// must stop. nil for a lock that cannot be lost.
	Lost() <-chan struct{}
	// Release ends the log (final: the last Save holds everything) and
	// releases the lock. A second Release does nothing.
	Release(final bool) error
}

// ErrLocked: another migrun holds the plan's lock.
var ErrLocked = errors.New("another migrun is running this plan")

// ErrLockLost: the run lost its lock while it ran and stopped.
var ErrLockLost = errors.New("the run lost its lock on the state store")

// LockProber is a Store that can tell who holds a plan's lock without
// taking it: status says whether the run its journal shows running is
// alive.
type LockProber interface {
	HeldBy(ctx context.Context, name string) (string, error) // "" when free
}

// Lister is a Store that can list the plans it holds journals of (for
// `migrun state migrate`).
type Lister interface {
	Names(ctx context.Context) ([]string, error)
}
