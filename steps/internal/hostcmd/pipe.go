package hostcmd

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/migrun/migrun/executors"
)

// PipeGrace is how long the sending end of a pipe between two hosts may
// take to finish once the receiving end exited by itself: the receiver
// has read what it wanted by then, and the sender is only exiting. Past
// it the sender is cancelled.
const PipeGrace = 5 * time.Second

// Side names an end of a pipe.
type Side string

const (
	Sender   Side = "sender"
	Receiver Side = "receiver"
)

// Piped is how a pipe ended.
type Piped struct {
	SendErr, RecvErr error
	// First is the side that failed first, "" when neither did. The other
	// side's error is then most likely a consequence (a truncated input, a
	// closed pipe, a cancellation) and the first one is the one to report.
	First Side
}

// Pipe runs send on from and recv on to at once, send's standard output
// flowing into recv's standard input (send.Stdout and recv.Stdin are
// Pipe's). pass, when not nil, sees every byte that went through (to
// count, hash, show progress); it must not fail. The first side to fail
// cancels the other: a sender that failed leaves the receiver a truncated
// input, and a receiver that stopped reading leaves the sender nowhere to
// write. A receiver that exited with a status has read what it wanted: the
// sender gets PipeGrace to finish before it is cancelled.
func Pipe(ctx context.Context, from executors.Executor, send executors.Command, to executors.Executor, recv executors.Command, pass io.Writer) Piped {
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		res Piped
	)
	failed := func(side Side) {
		mu.Lock()
		defer mu.Unlock()
		if res.First == "" {
			res.First = side
		}
	}

	pr, pw := io.Pipe()
	send.Stdout = &relay{w: pw, pass: pass}
	recv.Stdin = pr

	sent := make(chan struct{})
	go func() {
		defer close(sent)
		if _, err := from.Run(pctx, send); err != nil {
			failed(Sender)
			res.SendErr = err
			cancel()
			pw.CloseWithError(err)
			return
		}
		pw.Close() // EOF: the sender is done
	}()

	_, recvErr := to.Run(pctx, recv)
	// Nothing reads the pipe any more: a sender still writing must not
	// block on it (what it writes from now on is dropped).
	pr.CloseWithError(errors.New("the receiving end has ended"))
	if recvErr != nil {
		failed(Receiver)
		var exit *executors.ExitError
		if !errors.As(recvErr, &exit) {
			cancel()
		}
	}
	select {
	case <-sent:
	case <-time.After(PipeGrace):
		failed(Receiver)
		cancel()
		<-sent
	}
	mu.Lock()
	defer mu.Unlock()
	res.RecvErr = recvErr
	return res
}

// relay passes the sender's output on to the pipe, and what went through
// to pass. One goroutine writes (the executor's stdout copy).
type relay struct {
	w    io.Writer
	pass io.Writer
}

func (r *relay) Write(p []byte) (int, error) {
	n, err := r.w.Write(p)
	if r.pass != nil && n > 0 {
		r.pass.Write(p[:n])
	}
	return n, err
}
