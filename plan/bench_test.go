package plan_test

import (
	"os"
	"testing"

	"github.com/migrun/migrun/plan"
	"github.com/migrun/migrun/steps"
)

// BenchmarkParseHeadlinePlan loads the shipped headline plan (23 steps,
// 5 on_failure) with the builtin kinds: the cost of every migrun command
// before it contacts a host.
func BenchmarkParseHeadlinePlan(b *testing.B) {
	data, err := os.ReadFile("../plans/ovirt-engine-remote-db.yaml")
	if err != nil {
		b.Fatal(err)
	}
	reg := steps.Builtin()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := plan.Parse("ovirt-engine-remote-db.yaml", data, reg, nil); err != nil {
			b.Fatal(err)
		}
	}
}
