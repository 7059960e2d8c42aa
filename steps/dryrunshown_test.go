package steps

import (
	"context"
	"strings"
	"testing"

	"github.com/migrun/migrun/executors"
)

// applyShown applies spec with live after Describe with dry listed what it
// would do, recording the commands apply runs on its hosts; every one of
// them must be one the dry run showed, as it ran. A kind's dry run and its
// apply describe the same work: a reviewer approves what then runs.
func applyShown(ctx context.Context, t *testing.T, spec Spec, dry, live *Runtime) (Outcome, error) {
	t.Helper()
	acts, err := spec.Describe(ctx, dry)
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	shown := summaries(acts)
	rec := &executors.Recording{}
	recorded := *live
	recorded.Executor = func(ctx context.Context, host string) (executors.Executor, error) {
		e, err := live.Executor(ctx, host)
		if err != nil {
			return nil, err
		}
		return rec.Wrap(e), nil
	}
	out, err := spec.Apply(ctx, &recorded)
	for _, c := range rec.Commands() {
		if !strings.Contains(shown, c.Shown()) {
			t.Errorf("apply ran on %s %q, which the dry run did not show:\n%s", c.Host, c.Shown(), shown)
		}
	}
	// Every file it wrote, renamed into place or removed is named by the
	// dry run; but migrun's own: markers, work files, and what only
	// exists while it writes (a copy's .migrun-part).
	for _, r := range rec.Ran() {
		_, what, _ := strings.Cut(r, ": ")
		var path string
		switch verb, rest, _ := strings.Cut(what, " "); verb {
		case "write", "remove":
			path, _, _ = strings.Cut(rest, " ")
		case "rename":
			_, path, _ = strings.Cut(rest, " to ")
		}
		if path == "" || strings.Contains(path, "/migrun-") || strings.Contains(path, ".migrun-") {
			continue
		}
		if !strings.Contains(shown, path) {
			t.Errorf("apply changed %s (%s), which the dry run did not name:\n%s", path, r, shown)
		}
	}
	return out, err
}
