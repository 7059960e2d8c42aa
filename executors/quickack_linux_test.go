package executors

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestQuickAckWrapsTCPOnly: a TCP connection is wrapped and still reads,
// writes and honours deadlines; anything else is returned as it is.
func TestQuickAckWrapsTCPOnly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		io.Copy(c, c) // echo
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	c := quickAck(raw)
	if _, ok := c.(*quickAckConn); !ok {
		t.Fatalf("quickAck(%T) = %T, want *quickAckConn", raw, c)
	}
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
	if _, err := c.Read(buf); !isTimeout(err) {
		t.Errorf("read past the deadline: %v, want a timeout", err)
	}

	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if got := quickAck(a); got != a {
		t.Errorf("quickAck(pipe) = %T, want the pipe itself", got)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
