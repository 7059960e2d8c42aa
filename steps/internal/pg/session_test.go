package pg

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/migrun/migrun/executors"
)

// fakePsql answers as psql does on stdin, line by line: \echo prints its
// argument, "select X" a row, "sleep" hangs, "fail" stops with an error
// (ON_ERROR_STOP's exit 3).
const fakePsql = `while IFS= read -r line; do
  case "$line" in
    '\echo '*) printf '%s\n' "${line#\\echo }" ;;
    select*) printf 'row\037%s\n' "${line#select }" ;;
    sleep) sleep 30 ;;
    fail) echo "ERROR:  relation does not exist" >&2; exit 3 ;;
  esac
done`

func fakeSession(ctx context.Context) *Session {
	return openSession(ctx, executors.NewLocal("here"), executors.Command{Script: fakePsql})
}

func TestSessionRunsScriptsInTurn(t *testing.T) {
	ctx := context.Background()
	s := fakeSession(ctx)
	for _, tt := range []struct {
		sql  string
		want [][]string
	}{
		{"select 1\nselect 2", [][]string{{"row", "1"}, {"row", "2"}}},
		{"set nothing\n", nil},
		{"select 3\n", [][]string{{"row", "3"}}},
	} {
		got, err := s.Run(ctx, tt.sql)
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Fatalf("Run(%q) = %q, %v; want %q", tt.sql, got, err, tt.want)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Run(ctx, "select 4"); !errors.Is(err, errSessionEnded) {
		t.Fatalf("Run after Close: %v", err)
	}
}

func TestSessionFailureEndsIt(t *testing.T) {
	ctx := context.Background()
	s := fakeSession(ctx)
	_, err := s.Run(ctx, "select 1\nfail\nselect 2")
	var exit *executors.ExitError
	if !errors.As(err, &exit) || exit.ExitCode != 3 || !strings.Contains(err.Error(), "relation does not exist") {
		t.Fatalf("a failing script returned %v, want psql's exit 3 and its message", err)
	}
	if _, err2 := s.Run(ctx, "select 3"); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("the next Run returned %v, want the same failure", err2)
	}
	if err := s.Close(); !errors.As(err, &exit) {
		t.Fatalf("Close of a failed session: %v", err)
	}
}

func TestSessionRunStopsWithItsContext(t *testing.T) {
	s := fakeSession(context.Background())
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := s.Run(ctx, "sleep"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Run of a hung script: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Run returned after %v", d)
	}
}

func TestSessionOutputFindsTheEndAcrossWrites(t *testing.T) {
	o := newSessionOutput()
	o.Write([]byte("a\x1fb\nmigrun-end"))
	if _, ok := o.cut("migrun-end"); ok {
		t.Fatal("an end line without its newline was taken as the end")
	}
	o.Write([]byte("\nnext"))
	out, ok := o.cut("migrun-end")
	if !ok || string(out) != "a\x1fb\n" {
		t.Fatalf("cut = %q, %v", out, ok)
	}
	o.Write([]byte("\nmigrun-two\n"))
	if out, ok := o.cut("migrun-two"); !ok || string(out) != "next\n" {
		t.Fatalf("second cut = %q, %v", out, ok)
	}
	o.Write([]byte("migrun-three\n"))
	if out, ok := o.cut("migrun-three"); !ok || len(out) != 0 {
		t.Fatalf("an empty script's cut = %q, %v", out, ok)
	}
}
