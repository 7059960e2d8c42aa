package plan_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/migrun/migrun/plan"
)

// TestYAMLErrorPositions: every broken plan of the corpus is refused at
// the line and column the reference parser (PyYAML, see
// testdata/yaml-errors/reference.py) gives: bad indents, tabs, unclosed
// quotes and flow collections, duplicate keys, an unknown alias, text that
// is not UTF-8, with a BOM or CRLF line ends.
func TestYAMLErrorPositions(t *testing.T) {
	dir := filepath.Join("testdata", "yaml-errors")
	want, err := os.ReadFile(filepath.Join(dir, "expected.txt"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.Lines(string(want)) {
		name, pos, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok {
			continue
		}
		n++
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = plan.Parse(name, data, testRegistry(), nil)
			var errs plan.Errors
			if !errors.As(err, &errs) || len(errs) == 0 {
				t.Fatalf("parse: %v, want plan.Errors", err)
			}
			first := errs[0]
			if got := fmt.Sprintf("%d:%d", first.Line, first.Column); got != pos {
				t.Errorf("first error at %s, the reference parser at %s: %v", got, pos, first)
			}
		})
	}
	if n < 15 {
		t.Fatalf("the corpus has %d broken plans, want at least 15", n)
	}
}
