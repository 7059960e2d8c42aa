package hostcmd

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/migrun/migrun/executors"
)

func sh(script string) executors.Command {
	return executors.Command{Argv: []string{"sh", "-c", script}}
}

func TestPipe(t *testing.T) {
	for _, tt := range []struct {
		name       string
		send, recv string
		first      Side
		sendExit   int // 0: no error; -1: an error; -2: either
		recvExit   int
		received   string // what recv wrote, when it matters
		passed     string // what pass saw, when it matters
	}{
		{name: "both succeed", send: "printf 'a\\nb\\n'", recv: "cat", received: "a\nb\n", passed: "a\nb\n"},
		// The receiver is cancelled: its input is cut short.
		{name: "sender fails first", send: "printf 'a\\n'; exit 3", recv: "cat", first: Sender, sendExit: 3, recvExit: -1, passed: "a\n"},
		// The receiver exits having read what it wanted; the sender is
		// only exiting.
		{name: "receiver exits first", send: "printf abcdefgh", recv: "head -c 4 >/dev/null; exit 4", first: Receiver, sendExit: -2, recvExit: 4},
		{name: "receiver cannot start", send: "sleep 30", recv: "", first: Receiver, sendExit: -1, recvExit: -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ex := executors.NewLocal("local")
			recv := sh(tt.recv)
			if tt.recv == "" {
				recv = executors.Command{Argv: []string{"/nonexistent/migrun-test-receiver"}}
			}
			var got, passed bytes.Buffer
			recv.Stdout = &got
			p := Pipe(context.Background(), ex, sh(tt.send), ex, recv, &passed)
			if p.First != tt.first {
				t.Errorf("first = %q, want %q (send %v, recv %v)", p.First, tt.first, p.SendErr, p.RecvErr)
			}
			checkErr(t, "send", p.SendErr, tt.sendExit)
			checkErr(t, "recv", p.RecvErr, tt.recvExit)
			if tt.received != "" && got.String() != tt.received {
				t.Errorf("received %q, want %q", got.String(), tt.received)
			}
			if tt.passed != "" && passed.String() != tt.passed {
				t.Errorf("pass saw %q, want %q", passed.String(), tt.passed)
			}
		})
	}
}

func checkErr(t *testing.T, side string, err error, want int) {
	t.Helper()
	var exit *executors.ExitError
	switch {
	case want == 0 && err != nil:
		t.Errorf("%s: %v, want no error", side, err)
	case want > 0 && (!errors.As(err, &exit) || exit.ExitCode != want):
		t.Errorf("%s: %v, want exit status %d", side, err, want)
	case want == -1 && err == nil:
		t.Errorf("%s: no error, want one", side)
	}
}
