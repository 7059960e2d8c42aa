package executors

import (
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestRecordingLongStdin: a probe's stdin longer than what names its fact
// still reaches the command whole.
func TestRecordingLongStdin(t *testing.T) {
	for _, n := range []int{10, stdinLimit, stdinLimit + 1, 3*stdinLimit + 17} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			rec := &Recording{}
			ex := rec.Wrap(NewLocal("here"))
			res, err := ex.Run(context.Background(), Command{Argv: []string{"wc", "-c"}, ReadOnly: true,
				Stdin: bytes.NewReader(bytes.Repeat([]byte("x"), n))})
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(string(res.Stdout)); got != strconv.Itoa(n) {
				t.Fatalf("the command read %s bytes of %d", got, n)
			}
			if f := rec.Facts(); len(f) != 1 || !strings.Contains(f[0].What, "<stdin ") {
				t.Fatalf("facts %+v", f)
			}
		})
	}
}
