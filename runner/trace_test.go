package runner

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/migrun/migrun/internal/secret"
)

func TestTraceTimesEveryWaitWithoutSecrets(t *testing.T) {
	f := newFixture(t, "one", "two")
	f.spec(1).Path = "/file-hunter2"
	f.redigest()
	var trace bytes.Buffer
	if _, err := f.apply(Options{Trace: &trace}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(trace.String(), "hunter2") {
		t.Fatalf("the trace holds a secret:\n%s", trace.String())
	}
	lines := strings.Split(strings.TrimSuffix(trace.String(), "\n"), "\n")
	if lines[0] != strings.TrimSuffix(traceHeader, "\n") {
		t.Fatalf("first line %q, want the header", lines[0])
	}
	got := map[string]bool{}
	last := -1.0
	for _, l := range lines[1:] {
		fields := strings.Split(l, "\t")
		if len(fields) != 6 {
			t.Fatalf("line %q: %d fields, want 6", l, len(fields))
		}
		start, err1 := strconv.ParseFloat(fields[0], 64)
		took, err2 := strconv.ParseFloat(fields[1], 64)
		if err1 != nil || err2 != nil || start < 0 || took < 0 {
			t.Fatalf("line %q: start and duration are not times", l)
		}
		if start < last-0.001 && fields[2] == "-" {
			t.Errorf("line %q: the runner's own lines go back in time", l)
		}
		last = start
		got[strings.Join(fields[2:5], " | ")] = true
	}
	for _, want := range []string{
		"- | - | lock",
		"- | - | journal read",
		"- | - | journal save",
		"- | a | connect",
		"- | b | connect",
		"one | a | write /one (6 bytes)",
		"one | - | journal append, synced (running)",
		"one | - | journal append (done)",
		"two | b | write /file-" + secret.Masked + " (6 bytes)",
	} {
		if !got[want] {
			t.Errorf("no trace line %q in:\n%s", want, trace.String())
		}
	}
}
