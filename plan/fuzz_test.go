package plan_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/migrun/migrun/plan"
)

// FuzzParse feeds arbitrary bytes to Parse. The seeds in
// testdata/fuzz/FuzzParse are valid and invalid plans for the test kinds.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodPlan))
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := plan.Parse("fuzz.yaml", data, reg, nil)
		if err == nil {
			if p == nil || len(p.Digest) != 64 || len(p.Steps) == 0 {
				t.Fatalf("Parse succeeded with plan %+v", p)
			}
			for _, st := range append(p.Steps, p.OnFailure...) {
				if st.ID == "" || st.Spec == nil || len(st.Digest) != 64 || st.Line <= 0 {
					t.Fatalf("Parse succeeded with step %+v", st)
				}
			}
			again, err := plan.Parse("fuzz.yaml", data, reg, nil)
			if err != nil || again.Digest != p.Digest {
				t.Fatalf("second Parse differs: %v, digest %s vs %s", err, again.Digest, p.Digest)
			}
			return
		}
		if p != nil {
			t.Fatalf("Parse returned a plan and an error: %v", err)
		}
		var errs plan.Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("Parse error is %T, want non-empty plan.Errors: %v", err, err)
		}
		for _, e := range errs {
			switch {
			case e.File != "fuzz.yaml" || e.Msg == "":
				t.Fatalf("error without file or message: %+v", e)
			case e.Line < 0 || e.Column < 0 || (e.Line == 0 && e.Column != 0):
				t.Fatalf("error with a bad position: %+v", e)
			}
		}
		_, again := plan.Parse("fuzz.yaml", data, reg, nil)
		if again == nil || again.Error() != err.Error() {
			t.Fatalf("second Parse reports differently:\n%v\nvs\n%v", err, again)
		}
	})
}

// TestFuzzSeeds keeps the seed corpus honest: valid-* seeds must load and
// invalid-* seeds must not, or the fuzzer starts from the wrong places.
func TestFuzzSeeds(t *testing.T) {
	files, err := filepath.Glob("testdata/fuzz/FuzzParse/*")
	if err != nil || len(files) < 10 {
		t.Fatalf("seed corpus: %d files, %v", len(files), err)
	}
	for _, file := range files {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		header, lit, _ := strings.Cut(strings.TrimSpace(string(raw)), "\n")
		quoted, ok := strings.CutPrefix(lit, "[]byte(")
		data, err := strconv.Unquote(strings.TrimSuffix(quoted, ")"))
		if header != "go test fuzz v1" || !ok || err != nil {
			t.Fatalf("%s: not a fuzz corpus file", file)
		}
		_, err = plan.Parse("seed.yaml", []byte(data), testRegistry(), nil)
		if valid := strings.HasPrefix(filepath.Base(file), "valid-"); valid != (err == nil) {
			t.Errorf("%s: Parse error = %v", file, err)
		}
	}
}
