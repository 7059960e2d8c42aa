package runner

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkApply50Steps measures the runner's own cost per step (check,
// journal transitions with fsync, events) over 50 trivial steps on two
// in-memory hosts, so it excludes the network. Report: ns/op for the whole
// apply; divide by 50 for a step.
func BenchmarkApply50Steps(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = fmt.Sprintf("step-%02d", i)
		}
		r := newFixture(b, ids...).runner(Options{})
		b.StartTimer()
		if _, err := r.Apply(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
