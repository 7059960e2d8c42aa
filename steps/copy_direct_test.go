package steps

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
)

// TestDirectSendHashesOnTheWay runs a direct send's script for real on
// this machine, with an ssh stand-in on PATH that runs the remote command
// locally: a send from the start returns the sha256 of the bytes both ends
// saw, a resumed one appends and returns none, and a source that cannot
// be read gives sums of nothing, which transfer's size check refuses.
func TestDirectSendHashesOnTheWay(t *testing.T) {
	bin := t.TempDir()
	fake := "#!/bin/sh\nfor last; do :; done\nexec sh -c \"$last\"\n"
	if err := os.WriteFile(filepath.Join(bin, "ssh"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	dir := t.TempDir()
	data := make([]byte, 3<<20+17)
	rand.Read(data)
	src := filepath.Join(dir, "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	linkDir := t.TempDir()
	if out, err := exec.Command("mkfifo", "-m", "600", filepath.Join(linkDir, "fifo")).CombinedOutput(); err != nil {
		t.Fatalf("mkfifo: %v %s", err, out)
	}
	l := &directLink{src: executors.NewLocal("a"), dst: executors.NewLocal("b"), dir: linkDir,
		target: executors.SSHEndpoint{User: "u", Host: "b.example", Port: 22}}
	ctx := context.Background()
	bar := NopProgress{}.Start("", -1, 0)

	t.Run("from the start", func(t *testing.T) {
		part := filepath.Join(dir, "part-full")
		if err := os.WriteFile(part, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := l.send(ctx, src, part, 0, bar)
		if err != nil {
			t.Fatal(err)
		}
		if res.srcSum != want || res.dstSum != want {
			t.Fatalf("sums %+v, want %s on both ends", res, want)
		}
		if got, _ := os.ReadFile(part); !bytes.Equal(got, data) {
			t.Fatalf("part holds %d bytes, not the source's %d", len(got), len(data))
		}
	})
	t.Run("resumed", func(t *testing.T) {
		part := filepath.Join(dir, "part-resumed")
		if err := os.WriteFile(part, data[:1<<20], 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := l.send(ctx, src, part, 1<<20, bar)
		if err != nil || res != (sendResult{}) {
			t.Fatalf("send: %+v %v, want no sums (transfer hashes the files)", res, err)
		}
		if got, _ := os.ReadFile(part); !bytes.Equal(got, data) {
			t.Fatalf("part holds %d bytes after the resume, want %d", len(got), len(data))
		}
	})
	t.Run("unreadable source", func(t *testing.T) {
		part := filepath.Join(dir, "part-missing")
		if err := os.WriteFile(part, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		res, err := l.send(ctx, filepath.Join(dir, "missing"), part, 0, bar)
		empty := sha256.Sum256(nil)
		if err != nil || res.srcSum != hex.EncodeToString(empty[:]) || res.dstSum != res.srcSum {
			t.Fatalf("send: %+v %v", res, err)
		}
	})
	if s := l.command(src, "/p", 0, true).Script; !strings.HasPrefix(s, "tail -c +1 -- "+src+" | tee ") || !strings.Contains(s, "tee -a /p |") {
		t.Fatalf("hashed script:\n%s", s)
	}
}
