package executors

import (
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/migrun/migrun/internal/secret"
)

func TestTimedReportsEveryOperation(t *testing.T) {
	var ops []Op
	e := Timed(NewLocal("here"), func(_ context.Context, op Op) { ops = append(ops, op) })
	ctx := context.Background()
	p := filepath.ToSlash(filepath.Join(t.TempDir(), "f"))
	if err := e.WriteFile(ctx, p, []byte("hello"), FileAttrs{Mode: 0o600}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.ReadFile(ctx, p+".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read of a missing file: %v", err)
	}
	// A refused command is reported with its error, the secret by name.
	if _, err := e.Run(ctx, Command{Argv: []string{"true", secret.Token("pw")}, ReadOnly: true}); err == nil {
		t.Fatal("a secret in argv was not refused")
	}
	want := []string{"write " + p + " (5 bytes)", "read " + p + ".missing (0 bytes)", "run true '<secret:pw>'"}
	if len(ops) != len(want) {
		t.Fatalf("%d operations reported, want %d: %+v", len(ops), len(want), ops)
	}
	for i, op := range ops {
		if op.Host != "here" || op.What != want[i] || op.Start.IsZero() || op.Took < 0 {
			t.Errorf("operation %d = %+v, want host here, %q", i, op, want[i])
		}
	}
	if ops[0].Err != nil || !errors.Is(ops[1].Err, fs.ErrNotExist) || ops[2].Err == nil {
		t.Errorf("errors reported: %v, %v, %v", ops[0].Err, ops[1].Err, ops[2].Err)
	}
}
