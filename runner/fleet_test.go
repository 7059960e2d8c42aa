package runner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestRunFleet(t *testing.T) {
	outcomes := map[string]error{
		"a": nil,
		"b": &RunError{Failed: &StepError{Step: "restore", Err: errors.New("boom")}},
		"c": fmt.Errorf("%w (held by pid 1)", ErrLocked),
		"d": fmt.Errorf("%w at yesterday", ErrCompleted),
		"e": ErrUnfinished,
		"f": fmt.Errorf("%w: db-check", ErrRefused),
		"g": nil,
		"h": fmt.Errorf("interrupted: %w", ErrLockLost),
	}
	sets := []string{"a", "b", "c", "d", "e", "f", "g", "h"}
	want := map[string]string{"a": SetCompleted, "b": SetFailed, "c": SetTaken, "d": SetDoneBefore,
		"e": SetUnfinished, "f": SetRefused, "g": SetCompleted, "h": SetInterrupted}

	var running, most atomic.Int32
	var mu sync.Mutex
	var ran []string
	results := RunFleet(context.Background(), sets, 3, func(ctx context.Context, set string) (*Journal, error) {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		mu.Lock()
		ran = append(ran, set)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond)
		return &Journal{Plan: set}, outcomes[set]
	})
	if len(ran) != len(sets) {
		t.Fatalf("ran %v, want every set once: a failure stops no other", ran)
	}
	if m := most.Load(); m > 3 || m < 2 {
		t.Errorf("at most %d sets ran at once, want 2 or 3 with --parallel 3", m)
	}
	for i, r := range results {
		if r.Set != sets[i] || r.Outcome != want[r.Set] || !errors.Is(r.Err, outcomes[r.Set]) && r.Err != outcomes[r.Set] {
			t.Errorf("result %d: %s %q (%v), want %s %q", i, r.Set, r.Outcome, r.Err, sets[i], want[sets[i]])
		}
	}
}

func TestRunFleetCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	results := RunFleet(ctx, []string{"a", "b", "c"}, 1, func(ctx context.Context, set string) (*Journal, error) {
		cancel()
		<-ctx.Done()
		return nil, ctx.Err()
	})
	for _, r := range results {
		if r.Outcome != SetInterrupted {
			t.Errorf("%s: %s, want interrupted", r.Set, r.Outcome)
		}
	}
}
