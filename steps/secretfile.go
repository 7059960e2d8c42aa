package steps

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/migrun/migrun/executors"
)

// Secrets that a program must read from a file (a script, a passfile) go
// to a new file in /tmp that only its reader can open, with a random name
// so two runs (or another user) cannot race for it, and are removed after
// use even when the run is interrupted.

// secretFilePattern stands for the random names in dry runs.
const secretFilePattern = "/tmp/migrun-*"

// writeSecretFile writes content (secrets already revealed) to a new 0600
// file owned by owner ("" = the login user) and returns its path.
func writeSecretFile(ctx context.Context, ex executors.Executor, content, owner, suffix string) (string, error) {
	var b [12]byte
	rand.Read(b[:]) // never fails (crypto/rand panics rather than return an error)
	file := "/tmp/migrun-" + hex.EncodeToString(b[:]) + suffix
	attrs := executors.FileAttrs{Mode: 0o600, Owner: owner}
	if err := ex.WriteFile(ctx, file, []byte(content), attrs); err != nil {
		// WriteFile is atomic, but a half-applied write must not leave
		// secrets behind either way.
		removeSecretFile(ctx, ex, file)
		return "", fmt.Errorf("write %s:%s: %w", ex.Name(), file, err)
	}
	return file, nil
}

// removeSecretFile removes a secret file even when ctx was cancelled: an
// interrupt is exactly when a secret file would otherwise be left behind.
func removeSecretFile(ctx context.Context, ex executors.Executor, file string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return ex.Remove(ctx, file)
}
