package pg

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"regexp"

	"github.com/migrun/migrun/executors"
	"github.com/migrun/migrun/internal/bytesize"
	"github.com/migrun/migrun/steps/internal/hostcmd"
)

// DumpCommand is pg_dump of t's database writing a custom-format archive
// to its standard output, at gzip level compress (pg_dump -Z; "0" sends
// it uncompressed). schemaOnly leaves out the data, and the publications
// and subscriptions a dump would carry.
func DumpCommand(t Target, compress string, schemaOnly bool) executors.Command {
	argv := append([]string{"pg_dump", "-F", "c", "-Z", compress}, t.ConnArgv()...)
	if schemaOnly {
		argv = append(argv, "--schema-only", "--no-publications", "--no-subscriptions")
	}
	return t.ClientCommand(append(argv, t.Database), false)
}

// StreamRestoreCommand is pg_restore into t's database reading the archive
// from its standard input (serially: pg_restore runs no parallel jobs
// from a pipe). A schema alone is restored in one transaction: all of it
// or none, so an interrupted copy leaves an empty database to start again
// from, not half a schema.
func StreamRestoreCommand(t Target, noOwner bool, role string, schemaOnly bool) executors.Command {
	argv := RestoreArgv(t, 0, noOwner, role, false, "")
	if schemaOnly {
		argv = append(argv, "--single-transaction")
	}
	return RestoreCommand(t, argv)
}

// A Stream pipes a pg_dump on one host into a pg_restore on another
// (hostcmd.Pipe): they overlap, and no disk anywhere holds the archive.
type Stream struct {
	From     executors.Executor
	Dump     executors.Command // its standard output is the stream's
	To       executors.Executor
	Restore  executors.Command // its standard input is the stream's
	Harmless []*regexp.Regexp  // pg_restore errors to accept (HarmlessPatterns)
	Advice   string            // ends the error of a failed restore
	Out      io.Writer         // both commands' messages
	Progress io.Writer         // sees the archive's bytes as they pass; may be nil
}

// StreamResult is what a finished stream carried.
type StreamResult struct {
	Bytes  int64
	SHA256 string
	Report RestoreReport
}

// Run streams, counting and hashing the archive on its way. The first
// side to fail is the one reported; pg_restore's errors are classified
// (RestoreLog): only harmless ones are accepted.
func (s Stream) Run(ctx context.Context) (StreamResult, error) {
	h, n := sha256.New(), &counter{}
	pass := io.MultiWriter(h, n)
	if s.Progress != nil {
		pass = io.MultiWriter(h, n, s.Progress)
	}
	errs := &RestoreLog{}
	dump, restore := s.Dump, s.Restore
	dump.Stderr = s.Out
	restore.Stdout, restore.Stderr = s.Out, io.MultiWriter(s.Out, errs)
	p := hostcmd.Pipe(ctx, s.From, dump, s.To, restore, pass)
	res := StreamResult{Bytes: n.n, SHA256: hex.EncodeToString(h.Sum(nil))}
	report, rerr := errs.Result(p.RecvErr, s.Harmless, s.Advice)
	switch {
	case ctx.Err() != nil:
		return res, fmt.Errorf("stream interrupted after %s: %w", bytesize.Format(res.Bytes), ctx.Err())
	case p.SendErr != nil && p.First == hostcmd.Sender:
		return res, fmt.Errorf("pg_dump failed after %s: %w", bytesize.Format(res.Bytes), p.SendErr)
	case rerr != nil:
		return res, rerr
	case p.SendErr != nil:
		return res, fmt.Errorf("pg_restore ended before pg_dump on %s finished the stream (after %s): %w", s.From.Name(), bytesize.Format(res.Bytes), p.SendErr)
	}
	res.Report = report
	return res, nil
}

// counter counts what is written to it.
type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
