package pgstate_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/migrun/migrun/internal/pgtest"
	"github.com/migrun/migrun/runner"
	"github.com/migrun/migrun/runner/pgstate"
)

// BenchmarkAppend is what one journal transition costs a run, in a state
// directory and in a state database side by side, each with its durability
// on (the database with fsync and synchronous commits, as a production
// server runs): a transition that waits for the disk (sync, before a step
// changes its hosts) and one that does not.
func BenchmarkAppend(b *testing.B) {
	srv := pgtest.StartDurable(b)
	db, err := pgstate.Open(srv.OwnDatabase(b, "state"), pgstate.Options{})
	if err != nil {
		b.Fatal(err)
	}
	stores := []struct {
		name  string
		store runner.Store
	}{
		{"files", runner.FileStore{Dir: filepath.Join(b.TempDir(), "state")}},
		{"postgres", db},
	}
	ctx := context.Background()
	rec := &runner.StepRecord{ID: "restore", Kind: "pg_restore", Host: "db", Status: runner.StatusRunning,
		Ran: []string{"pg_restore -d engine -j 4 /var/tmp/engine.dump"}}
	for _, st := range stores {
		for _, sync := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/sync=%t", st.name, sync), func(b *testing.B) {
				lk, err := st.store.Lock(ctx, "bench", runner.Holder{PID: os.Getpid(), Since: time.Now()})
				if err != nil {
					b.Fatal(err)
				}
				defer lk.Release(true)
				j := &runner.Journal{Version: 1, Plan: "bench", History: []runner.RunRecord{{RunID: "inv"}},
					Steps: []*runner.StepRecord{rec}}
				if err := lk.Save(ctx, j); err != nil {
					b.Fatal(err)
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := lk.Append(ctx, runner.LogEntry{Run: "inv", List: "steps", Step: rec, Status: runner.StatusRunning, Updated: time.Now()}, sync); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
