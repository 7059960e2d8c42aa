package steps

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
)

// TestDirectSums runs the after-transfer verification of a direct copy on
// this machine: the source's Checksum and the target's sync-and-hash
// script, at once, agree on the same bytes; a missing part is an error
// naming it.
func TestDirectSums(t *testing.T) {
	dir := t.TempDir()
	data := make([]byte, 2<<20+5)
	rand.Read(data)
	src, part := filepath.Join(dir, "src"), filepath.Join(dir, "it's a part")
	for _, p := range []string{src, part} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256(data)
	want := hex.EncodeToString(sum[:])
	l := &directLink{src: executors.NewLocal("a"), dst: executors.NewLocal("b")}
	s, d, err := l.sums(context.Background(), src, part)
	if err != nil || s != want || d != want {
		t.Fatalf("sums %s %s %v, want %s twice", s, d, err, want)
	}
	_, _, err = l.sums(context.Background(), src, filepath.Join(dir, "missing"))
	if err == nil || !strings.Contains(err.Error(), "sync and sha256 of b:"+filepath.Join(dir, "missing")) {
		t.Fatalf("missing part: %v", err)
	}
}
